// The view: which layer, head, query token and step the element shows (0-based, under the names
// the header's `view_fields` lists), kept within the run's sizes, changed by the pickers and the
// keys, written to the address bar at once and reported to the server once the clicks stop.
// Methods of StepView (element.js).

// The view's fields from the address bar, 0-based; only those that are whole numbers
function viewInAddress(fields) {
  const params = new URLSearchParams(window.location.search);
  const view = {};
  for (const name of fields) {
    const value = Number(params.get(name));
    if (params.has(name) && Number.isInteger(value) && value >= 1) view[name] = value - 1;
  }
  return view;
}

const ViewState = {
  clampView() {
    const h = this.trace.header;
    const v = this.view;
    v.layer = Math.max(0, Math.min(v.layer, h.n_layers - 1));
    v.head = Math.max(0, Math.min(v.head, h.n_heads - 1));
    v.query = Math.max(0, Math.min(v.query, h.tokens.length - 1));
    v.step = Math.max(0, Math.min(v.step, h.steps.length - 1));
  },

  setView(change) {
    const before = { ...this.view };
    Object.assign(this.view, change);
    this.clampView();
    if (JSON.stringify(this.view) === JSON.stringify(before)) return;
    this.draw();
    this.remember();
    this.announce(before);
  },

  // A change of layer, head or (in presentation mode) step, said to a screen reader through a
  // polite live region: the eye sees the charts change, the ear would hear nothing.
  announce(before) {
    const h = this.trace.header;
    const v = this.view;
    if (v.layer === before.layer && v.head === before.head && v.step === before.step) return;
    let text = fill(h.strings.step_view_announce, { layer: v.layer + 1, head: v.head + 1 });
    const heading = h.style.present && this.sections[h.steps[v.step]].querySelector("h3");
    if (heading) text += ` · ${heading.textContent}`;
    this.live.textContent = text;
  },

  // The address bar right after the frame that shows the view (history.replaceState is slow
  // enough that the click should not wait for it); the server `report_ms` later, when the clicks
  // stop.
  remember() {
    const h = this.trace.header;
    const v = Object.fromEntries(h.view_fields.map((name) => [name, this.view[name]]));
    if (!this.addressFrame) {
      this.addressFrame = requestAnimationFrame(() =>
        setTimeout(() => {
          this.addressFrame = null;
          this.writeAddress(this.view);
        }, 0),
      );
    }
    clearTimeout(this.reportTimer);
    this.reportTimer = setTimeout(() => this.setStateValue("view", v), h.report_ms);
  },

  // Every field 1-based, and only where it is not the first: a link leaves out what is the
  // default (the first layer, head, query and step), as the server writes links.
  writeAddress(v) {
    const url = new URL(window.location.href);
    for (const name of this.trace.header.view_fields) {
      if (v[name] === 0) url.searchParams.delete(name);
      else url.searchParams.set(name, String(v[name] + 1));
    }
    window.history.replaceState(window.history.state, "", url);
  },

  key(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || !this.root.isConnected) return;
    const target = event.target;
    const inside = this.root.contains(target);
    if (!inside && !(this.trace && this.trace.header.style.present)) return;
    // Typing is left alone; the step view's own Layer and Head buttons take the arrows as everywhere
    // else in it (a browser's radios would move ↑/↓ within the heads).
    const ownRadio = inside && target.matches && target.matches(".avi-radio input");
    if (!ownRadio && target.closest && target.closest("input, textarea, select, [contenteditable], [role=slider], [role=textbox]")) return;
    const v = this.view;
    const moves = {
      ArrowLeft: { head: v.head - 1 },
      ArrowRight: { head: v.head + 1 },
      ArrowUp: { layer: v.layer - 1 },
      ArrowDown: { layer: v.layer + 1 },
      PageUp: { step: v.step - 1 },
      PageDown: { step: v.step + 1 },
    };
    if (!(event.key in moves)) return;
    if (event.key.startsWith("Page") && !this.trace.header.style.present) return;
    event.preventDefault();
    this.setView(moves[event.key]);
  },
};
