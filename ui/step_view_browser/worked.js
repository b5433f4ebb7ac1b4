// The worked example: the trace's numbers for one query, step by step (the dot products, scaled,
// exponentiated and normalised, then the weighted sum of the values), as tables and, for a short
// sentence, the softmax of each weight as a formula. Methods of StepView (element.js).

const SCROLL_ABOVE_ROWS = 16; // longer worked-example tables scroll, with the sums kept in view

const WorkedExample = {
  buildWorked(section, t) {
    section.append(el("h3", { text: t.worked_example }));
    const select = el("select", { class: "avi-query", "aria-label": t.worked_query });
    select.addEventListener("change", () => this.setView({ query: Number(select.value) }));
    this.querySelect = select;
    section.append(el("label", { class: "avi-query-label" }, el("span", { text: t.worked_query }), select));
    this.worked = el("div", { class: "avi-worked" });
    section.append(this.worked);
  },

  drawWorked(layer) {
    const h = this.trace.header;
    const t = h.strings;
    const v = this.view;
    const n = h.key_tokens.length; // the keys the query weighs (the source's, in cross-attention)
    const q = v.query;
    const d = h.d_head;
    const pick = (array) => rowsOf(array, v.head)[q];
    const dots = Array.from(pick(layer.scores));
    const scaled = Array.from(pick(layer.scaled_scores));
    const weights = Array.from(pick(this.trace.weights[v.layer]));
    const context = Array.from(pick(layer.context));
    const values = rowsOf(layer.v, v.head);
    const finite = scaled.filter(Number.isFinite);
    const largest = Math.max(...finite);
    const shift = largest > h.max_unshifted_exponent ? largest : 0;
    const exps = scaled.map((s) => Math.exp(s - shift));
    const expSum = exps.reduce((a, b) => a + b, 0);
    const total = weights.reduce((a, b) => a + b, 0);

    const parts = [
      el("p", { text: fill(t.worked_intro, { query: q + 1, layer: v.layer + 1, head: v.head + 1 }) }),
      el("p", { text: t.worked_step1 }),
      el("p", { text: t.worked_step2 }),
      el("p", { text: fill(t.worked_step3, { sum: expSum }) }),
    ];
    if (shift) parts.push(el("p", { class: "avi-caption", text: fill(t.worked_shift, { shift }) }));
    parts.push(el("p", { text: fill(t.worked_step4, { total }) }));
    if (n <= 6) parts.push(this.softmaxFormula(q, scaled, weights));
    const header = [t.col_key, t.col_dot, t.col_scaled, t.col_exp, t.col_weight];
    const rows = h.key_tokens.map((token, j) => [token, ...[dots[j], scaled[j], exps[j], weights[j]].map((x) => numberText(x, 4))]);
    parts.push(this.table(header, rows, [], "avi-table-steps", `${t.worked_example}: ${t.col_dot} … ${t.col_weight}`));
    if (scaled.some((s) => !Number.isFinite(s))) parts.push(el("p", { class: "avi-caption", text: t.worked_masked }));
    parts.push(el("p", { text: t.worked_step5 }));
    const dims = Math.min(d, h.worked_dimensions);
    if (dims < d) parts.push(el("p", { class: "avi-caption", text: t.worked_dims }));
    const weighted = values.map((vector, j) => Array.from(vector.subarray(0, dims), (x) => weights[j] * x));
    const sums = Array.from({ length: dims }, (_, c) => weighted.reduce((a, r) => a + r[c], 0));
    const vectorHeader = [t.col_key, ...Array.from({ length: dims }, (_, c) => `${t.col_weighted}[${c}]`)];
    const vectorRows = h.key_tokens.map((token, j) => [token, ...weighted[j].map((x) => numberText(x, 4))]);
    const footer = [
      [t.weighted_sum_row, ...sums.map((x) => numberText(x, 4))],
      [t.context_row, ...context.slice(0, dims).map((x) => numberText(x, 4))],
    ];
    parts.push(this.table(vectorHeader, vectorRows, footer, "avi-table-sum", `${t.worked_example}: ${t.weighted_sum_row}`));
    this.worked.replaceChildren(...parts);
  },

  // Steps 1 to 5 as a table: a header, one row per key, and rows kept in view below a long body.
  // Each row's first cell heads its row (a screen reader says "key cat" before each number).
  table(header, rows, footer, name, label) {
    const cell = (tag) => (text, c) => (c ? el(tag, { class: "avi-number", text }) : el(tag === "td" ? "th" : tag, { class: "avi-token", scope: tag === "td" ? "row" : "col", text }));
    const make = (cells, tag) => el("tr", {}, ...cells.map(cell(tag)));
    const body = el("table", { class: `avi-table ${name}` }, el("thead", {}, make(header, "th")), el("tbody", {}, ...rows.map((r) => make(r, "td"))));
    if (footer.length) body.append(el("tfoot", {}, ...footer.map((r) => make(r, "td"))));
    // A box that scrolls is a region the keyboard can reach and scroll (tabindex), named for a screen reader.
    const scroll = el("div", { class: rows.length > SCROLL_ABOVE_ROWS ? "avi-scroll avi-long" : "avi-scroll", tabindex: "0", role: "region", "aria-label": label }, body);
    return scroll;
  },

  // Step 4 for a short sentence: every weight of the query's row as e^s / Σ e^s, with its numbers.
  softmaxFormula(q, scaled, weights) {
    const visible = scaled.map((s, j) => [j, s, weights[j]]).filter(([, s]) => Number.isFinite(s));
    const power = (s) => sup(mi("e"), mn(s.toFixed(3)));
    const terms = () => row(...visible.flatMap(([, s], index) => (index ? [mo("+"), power(s)] : [power(s)])));
    const table = m("mtable");
    for (const [j, s, w] of visible) {
      const cells = [sub(mi("A"), row(mn(String(q + 1)), mo(","), mn(String(j + 1)))), mo("="), frac(power(s), terms()), mo("="), mn(w.toFixed(4))];
      table.append(m("mtr", m("mtd", row(...cells))));
    }
    return el("div", { class: "avi-softmax", tabindex: "0", role: "region", "aria-label": `${this.trace.header.strings.worked_example}: softmax` }, math(table));
  },
};
