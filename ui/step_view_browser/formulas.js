// The formula beside each of the five steps, as MathML, with the run's sizes in it (n, d_k, √d_k),
// and fitted to its box.

const FORMULA_MIN_SCALE = 0.6; // a formula is set no smaller than this share of its type to fit

// A formula wider than its box (a phone's column) set smaller to fit it, down to FORMULA_MIN_SCALE;
// narrower still, it scrolls sideways inside its box, and the keyboard can reach it to scroll it.
function fitFormula(holder) {
  const node = holder.firstElementChild;
  if (!node) return;
  node.style.fontSize = "";
  if (node.scrollWidth > node.clientWidth && node.clientWidth > 0) {
    const size = parseFloat(getComputedStyle(node).fontSize);
    const scale = Math.max(FORMULA_MIN_SCALE, (0.98 * node.clientWidth) / node.scrollWidth);
    node.style.fontSize = `${(size * scale).toFixed(2)}px`;
  }
  const scrolls = node.scrollWidth > node.clientWidth;
  node.classList.toggle("avi-scrolls", scrolls);
  if (scrolls) node.setAttribute("tabindex", "0");
  else node.removeAttribute("tabindex");
}

function formula(step, h) {
  const sqrt = Math.sqrt(h.d_head);
  switch (step) {
    case "qkv": {
      // Cross-attention: K and V come from the encoder's output M (a row per source token).
      const size = (n) => [m("mspace"), mo("("), mn(String(n)), mo("×"), mn(String(h.d_head)), mo(")")];
      const product = (name, i) => [...(i ? [mo(","), m("mspace")] : []), mi(name), mo("="), mi(h.cross && i ? "M" : "X"), sup(mi("W"), mi(name))];
      if (!h.cross) return math(...["Q", "K", "V"].flatMap(product), ...size(h.tokens.length));
      return math(...product("Q", 0), ...size(h.tokens.length), ...product("K", 1), ...product("V", 2), ...size(h.key_tokens.length));
    }
    case "scores":
      return math(mi("S"), mo("="), mi("Q"), kt());
    case "scaled":
      return math(
        tilde("S"),
        mo("="),
        frac(row(mi("Q"), kt()), m("msqrt", sub(mi("d"), mi("k")))),
        mo("="),
        frac(mi("S"), m("msqrt", mn(String(h.d_head)))),
        mo("="),
        frac(mi("S"), mn(sqrt.toFixed(3))),
      );
    case "mask": {
      // M_ij = 0 where j ≤ i, −∞ where j > i; step 3's scores carry it: S̃ + M.
      const ij = row(mi("i"), mi("j"));
      const cases = m("mtable", m("mtr", m("mtd", mn("0")), m("mtd", row(mi("j"), mo("≤"), mi("i")))), m("mtr", m("mtd", row(mo("−"), mi("∞"))), m("mtd", row(mi("j"), mo(">"), mi("i")))));
      return math(sub(mi("M"), ij), mo("="), row(mo("{"), cases), mo(","), m("mspace"), tilde("S"), mo("+"), mi("M"));
    }
    case "weights": {
      const s = (i) => sub(tilde("S"), i);
      return math(
        sub(mi("A"), row(mi("i"), mi("j"))),
        mo("="),
        row(mi("softmax"), mo("("), s(mi("i")), sub(mo(")"), mi("j"))),
        mo("="),
        frac(sup(mi("e"), s(row(mi("i"), mi("j")))), row(m("munder", mo("∑"), mi("m")), sup(mi("e"), s(row(mi("i"), mi("m")))))),
      );
    }
    case "context":
      return math(
        mi("Z"),
        mo("="),
        mi("A"),
        mi("V"),
        mo(","),
        m("mspace"),
        sub(mi("z"), mi("i")),
        mo("="),
        m("munder", mo("∑"), mi("j")),
        sub(mi("A"), row(mi("i"), mi("j"))),
        sub(mi("v"), mi("j")),
      );
    default:
      return null;
  }
}
