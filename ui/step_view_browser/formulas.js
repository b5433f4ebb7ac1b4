// The formula beside each of the five steps, as MathML, with the run's sizes in it (n, d_k, √d_k).

function formula(step, h) {
  const sqrt = Math.sqrt(h.d_head);
  switch (step) {
    case "qkv":
      return math(
        ...["Q", "K", "V"].flatMap((name, i) => [
          ...(i ? [mo(","), m("mspace")] : []),
          mi(name),
          mo("="),
          mi("X"),
          sup(mi("W"), mi(name)),
        ]),
        m("mspace"),
        mo("("),
        mn(String(h.tokens.length)),
        mo("×"),
        mn(String(h.d_head)),
        mo(")"),
      );
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
