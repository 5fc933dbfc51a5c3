module.exports = {class: 'Model', id: 'x'};
