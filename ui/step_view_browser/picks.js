// Token picks: several tokens chosen at once, as queries (where they look) or as keys (who looks
// at them), in the strip of heads and the grid of every head; both pickers show one choice, and
// the tiles and captions show what the tokens chosen do. Methods of StepView (element.js).

const TokenPicks = {
  // A picker of tokens for the strip or the grid: a chip per token, whether they are the queries or
  // the keys, and Clear. Both pickers show one choice.
  tokenBar(t) {
    const chips = el("div", { class: "avi-chips", role: "group", "aria-label": t.pick_tokens });
    const mode = el("div", { class: "avi-radios", role: "radiogroup", "aria-label": `${t.pick_tokens}: ${t.pick_as_queries} / ${t.pick_as_keys}` });
    const name = `avi-pick-${Math.random().toString(36).slice(2)}`;
    for (const [value, label] of [
      ["queries", t.pick_as_queries],
      ["keys", t.pick_as_keys],
    ]) {
      const input = el("input", { type: "radio", name, value });
      input.addEventListener("change", () => input.checked && this.setPicks(this.picked, value));
      mode.append(el("label", { class: "avi-radio" }, input, el("span", { text: label })));
    }
    const clear = el("button", { type: "button", class: "avi-button avi-pick-clear", text: t.pick_clear });
    clear.addEventListener("click", () => this.setPicks(new Set(), this.pickMode));
    const hint = el("p", { class: "avi-hint" });
    const bar = el("div", { class: "avi-pick" }, el("span", { class: "avi-label", text: t.pick_tokens }), chips, el("div", { class: "avi-pick-row" }, mode, clear), hint);
    this.pickBars.push({ chips, mode, clear, hint });
    return bar;
  },

  togglePick(position) {
    const picked = new Set(this.picked);
    if (!picked.delete(position)) picked.add(position);
    this.setPicks(picked, this.pickMode);
  },

  setPicks(picked, mode) {
    this.picked = picked;
    this.pickMode = mode;
    this.syncPicks();
    this.draw();
  },

  syncPicks() {
    const t = this.trace.header.strings;
    for (const { chips, mode, clear, hint } of this.pickBars) {
      chips.querySelectorAll(".avi-chip").forEach((chip) => chip.setAttribute("aria-pressed", String(this.picked.has(Number(chip.dataset.token)))));
      mode.querySelectorAll("input").forEach((input) => (input.checked = input.value === this.pickMode));
      clear.disabled = this.picked.size === 0;
      const said = this.pickMode === "queries" ? t.pick_queries_hint : t.pick_keys_hint;
      hint.textContent = this.picked.size ? said : "";
    }
  },

  // The choice as text ("queries:0,2"), or "" with nothing chosen: what a strip or grid drawn shows.
  pickKey() {
    return this.picked.size ? `${this.pickMode}:${[...this.picked].sort((a, b) => a - b).join(",")}` : "";
  },

  // One layer's tiles with only the chosen tokens' rows (queries) or columns (keys), pooled into the
  // grid's blocks as viz.grid.pool_blocks pools (the mean of the cells kept): shaped as a strip.
  pickedStrip(layer) {
    const h = this.trace.header;
    const weights = this.trace.weights[layer];
    const [heads, n] = weights.shape;
    const block = h.grid_block;
    const m = Math.ceil(n / block);
    const stride = m + h.grid_gap;
    const width = heads * stride - h.grid_gap;
    const sums = new Float64Array(m * width);
    const counts = new Uint32Array(m * width);
    const queries = this.pickMode === "queries";
    for (let head = 0; head < heads; head++) {
      const rows = rowsOf(weights, head);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (!this.picked.has(queries ? i : j)) continue;
          const at = Math.floor(i / block) * width + head * stride + Math.floor(j / block);
          sums[at] += rows[i][j];
          counts[at] += 1;
        }
      }
    }
    const data = Float32Array.from(sums, (sum, at) => (counts[at] ? sum / counts[at] : NaN));
    return { data, shape: [m, width] };
  },

  // Per head of `layer`, the caption of its tile for the tokens chosen: the key they look at most
  // together and their mean weight on it ("→ cat 0.61"), or the query that looks at them most and its
  // weight on them together ("sat → 0.45"), as encoder.selected_attention computes them.
  pickedCaptions(layer) {
    const h = this.trace.header;
    const weights = this.trace.weights[layer];
    const [heads, n] = weights.shape;
    const picked = [...this.picked];
    const queries = this.pickMode === "queries";
    return Array.from({ length: heads }, (_, head) => {
      const rows = rowsOf(weights, head);
      let best = 0;
      let top = -Infinity;
      for (let other = 0; other < n; other++) {
        let value = 0;
        for (const p of picked) value += queries ? rows[p][other] : rows[other][p];
        if (queries) value /= picked.length;
        if (value > top) [best, top] = [other, value];
      }
      const token = h.labels[best];
      return queries ? `→ ${token} ${numberText(top, 2)}` : `${token} → ${numberText(top, 2)}`;
    });
  },
};
