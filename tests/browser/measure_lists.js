// Measures the tables of one admin page (tests/browser/test_lists_at_1366.py) and returns every
// problem found, in words. `minEm`: the narrowest a cell whose text wraps may be, in its em.
(minEm) => {
  const problems = [];
  const root = document.documentElement;
  const name = (el) => {
    const cls = [...el.classList].find((c) => c.startsWith("field-") || c.startsWith("column-"));
    const text = el.innerText.trim().slice(0, 40);
    return `${el.tagName.toLowerCase()}${cls ? "." + cls : ""} "${text}"`;
  };
  const clipped = (el) => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1;
  const px = (n) => `${Math.round(n)}px`;

  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push(`the page scrolls sideways: ${px(root.scrollWidth)} in ${px(root.clientWidth)}`);
  }
  const filter = document.querySelector("#changelist-filter");
  // The box of `el` that shows: cut by every box around it that clips (up to `stop`).
  const shownBox = (el, stop) => {
    const box = el.getBoundingClientRect();
    const shown = { left: box.left, right: box.right, top: box.top, bottom: box.bottom };
    for (let up = el.parentElement; up && up !== stop; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") {
        const clip = up.getBoundingClientRect();
        shown.left = Math.max(shown.left, clip.left);
        shown.right = Math.min(shown.right, clip.right);
      }
    }
    return shown;
  };
  const covers = (f, shown) =>
    f.left < shown.right - 1 && f.right > shown.left + 1 && f.top < shown.bottom && f.bottom > shown.top;
  // Nothing of the list (the search bar, the actions, the table, the paginator) lies under the
  // filter panel: a long action name once widened its menu under it.
  const list = document.querySelector("#changelist .changelist-form-container");
  if (filter && filter.offsetParent && list) {
    const f = filter.getBoundingClientRect();
    for (const el of list.querySelectorAll("*")) {
      if (!el.offsetParent || el.closest("table")) continue;
      const shown = shownBox(el, document.body);
      if (shown.right > shown.left && covers(f, shown)) {
        const what =
          el.tagName.toLowerCase() +
          (el.id ? "#" + el.id : "") +
          (el.name ? `[name=${el.name}]` : "") +
          (el.className && typeof el.className === "string" ? "." + el.className.split(" ")[0] : "") +
          (el.parentElement.id ? ` in #${el.parentElement.id}` : "");
        problems.push(`the filter panel (${px(f.left)}–${px(f.right)}) covers ${what} (${px(shown.left)}–${px(shown.right)})`);
      }
    }
  }
  const tables = [...document.querySelectorAll("#content table")].filter((t) => t.offsetParent);
  for (const table of tables) {
    const label = `table ${table.id || table.className}`;
    const shown = shownBox(table, document.body);
    if (shown.right > root.clientWidth + 1) {
      problems.push(`${label} ends at ${px(shown.right)}, past the window`);
    }
    if (filter && filter.offsetParent) {
      const f = filter.getBoundingClientRect();
      if (covers(f, shown)) {
        problems.push(
          `the filter panel (${px(f.left)}–${px(f.right)}) covers ${label} ` +
            `(${px(shown.left)}–${px(shown.right)})`,
        );
      }
    }
    for (const cell of table.querySelectorAll("th, td")) {
      if (!cell.offsetParent || cell.closest("table") !== table || !cell.innerText.trim()) continue;
      const style = getComputedStyle(cell);
      const em = parseFloat(style.fontSize);
      const inner =
        cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      // Clipped: the cell's content sticks out, or a box inside it hides what overflows.
      const hider = [cell, ...cell.querySelectorAll("*")].find(
        (el) => clipped(el) && (el === cell || getComputedStyle(el).overflowX !== "visible"),
      );
      if (hider) {
        problems.push(
          `${name(cell)} is clipped: ${px(hider.scrollWidth)} of content in ` +
            px(hider.clientWidth),
        );
      }
      // The lines of the cell's text (a bar or a badge beside it is not a line of text) and
      // the width of that text on one line.
      const rects = [];
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        rects.push(...[...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0));
      }
      const lines = new Set(rects.map((r) => Math.round(r.top / 4))).size;
      if (lines < 2) continue;
      const oneLine = rects.reduce((sum, r) => sum + r.width, 0);
      const need = Math.min(oneLine, minEm * em);
      if (inner + 1 < need) {
        problems.push(`${name(cell)} is squeezed: ${px(inner)} wide, ${lines} lines (needs ${px(need)})`);
      }
      // A <br> is a chosen line break; a date or an amount broken by the width is not.
      const text = cell.innerText.trim();
      const breaks = cell.querySelectorAll("br").length;
      if (lines > breaks + 1 && (/^[\d\s,.:\-\/%¥~]+$/.test(text) || /^\d{4}[-年]/.test(text))) {
        problems.push(`${name(cell)} (a date or an amount) wraps onto ${lines} lines`);
      }
    }
  }
  return problems;
}
