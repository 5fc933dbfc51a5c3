// Grouparoo's usual form: a function returning the objects (called, awaited)
exports.default = async function buildConfig() {
  return [{ class: "Model", id: "x", name: "X", type: "profile" }];
};
