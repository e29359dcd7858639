// Only used by Jest, to turn ESM-only dependencies (execa and its helpers) into CommonJS.
module.exports = {
  presets: [['@babel/preset-env', { targets: { node: 'current' } }]],
};
