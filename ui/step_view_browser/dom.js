// DOM and MathML helpers: elements built from attributes and children (text always through
// textContent: tokens are user text), and the MathML of the formulas, drawn by the browser itself.

const MATHML = "http://www.w3.org/1998/Math/MathML";

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function m(tag, ...children) {
  const node = document.createElementNS(MATHML, tag);
  for (const child of children) node.append(child);
  return node;
}
const mi = (text) => m("mi", text);
const mo = (text) => m("mo", text);
const mn = (text) => m("mn", text);
const row = (...children) => m("mrow", ...children);
const sup = (base, power) => m("msup", base, power);
const sub = (base, index) => m("msub", base, index);
const frac = (top, bottom) => m("mfrac", top, bottom);
const math = (...children) => {
  const node = m("math", ...children);
  node.setAttribute("display", "block");
  return node;
};
const kt = () => sup(mi("K"), mo("⊤"));
const tilde = (x) => {
  const node = m("mover", mi(x), mo("~"));
  node.setAttribute("accent", "true");
  return node;
};
