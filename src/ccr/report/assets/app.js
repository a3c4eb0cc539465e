// The ccr report page. It runs from disk (file://), where fetch() is refused, so every data file
// is a script calling CCR.put(name, value) and is loaded by injecting a <script> tag when needed.
// Sorting and filtering work on typed-array columns (data/cols/*.js); row text is read only for
// the page on screen (data/rows/*.js), and search text only once someone searches.
"use strict";
(() => {
  const store = new Map();
  const pending = new Map();
  const CCR = (window.CCR = { put: (name, value) => store.set(name, value), timing: {} });
  let meta = null;

  // ---- data loading --------------------------------------------------------------------------

  function load(name) {
    if (store.has(name)) return Promise.resolve(store.get(name));
    if (!pending.has(name)) {
      pending.set(name, new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = `data/${name}.js`;
        script.onload = () => {
          script.remove();
          if (store.has(name)) resolve(store.get(name));
          else reject(new Error(`data/${name}.js did not define ${name}`));
        };
        script.onerror = () => {
          script.remove();
          pending.delete(name);
          reject(new Error(`cannot read data/${name}.js: is the report directory complete?`));
        };
        document.head.appendChild(script);
      }));
    }
    return pending.get(name);
  }

  const shardName = (kind, shard) => `${kind}/${String(shard).padStart(5, "0")}`;

  async function items(kind, indices) {
    const size = meta[kind].size;
    const shards = [...new Set(indices.map((i) => Math.floor(i / size)))];
    await Promise.all(shards.map((s) => load(shardName(kind, s))));
    return indices.map((i) => store.get(shardName(kind, Math.floor(i / size)))[i % size]);
  }

  const range = (n) => Int32Array.from({ length: n }, (_, i) => i);
  const columns = new Map();

  async function column(name) {
    if (!columns.has(name)) {
      const raw = await load(`cols/${name}`);
      const text = atob(raw.b64);
      const bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      columns.set(name, raw.dtype === "f32" ? new Float32Array(bytes.buffer) : new Uint16Array(bytes.buffer));
    }
    return columns.get(name);
  }

  let searchText = null;

  async function allText() {
    if (!searchText) {
      const shards = Math.ceil(meta.text.count / meta.text.size);
      const parts = await Promise.all(Array.from({ length: shards }, (_, s) => load(shardName("text", s))));
      searchText = parts.flat();
    }
    return searchText;
  }

  // ---- small helpers -------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function fill(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(3);
  }

  const fmtScore = (value) => (typeof value === "number" && Math.abs(value) < 1000 ? value.toFixed(3) : fmt(value));

  function table(headers, rows, attrs) {
    return h("table", { class: "grid", ...attrs },
      h("thead", null, h("tr", null, headers.map((x) => h("th", null, x)))),
      h("tbody", null, rows));
  }

  function showError(error) {
    const box = document.getElementById("error");
    box.hidden = false;
    box.textContent = String(error && error.message ? error.message : error);
  }

  const numericColumns = () => meta.columns.filter((c) => c.kind === "num");
  const colMeta = (name) => meta.columns.find((c) => c.name === name);
  const labels = () => (meta.mode === "pairs"
    ? { src: "English source", text: "MT caption", bt: "back-translation" }
    : { src: "parent caption", text: "caption", bt: "back-translation" });

  // a translate-test query (MT into English) has a non-English source: say which language
  const sourceText = (row) => (row.src === null ? "—" : row.src_lang && row.src_lang !== "en" ? `[${row.src_lang}] ${row.src}` : row.src);

  function thumb(row) {
    if (row.thumb) return h("img", { src: row.thumb, alt: `media ${row.media}`, loading: "lazy", class: "thumb" });
    return h("div", { class: "placeholder", title: row.problem || "" }, "no image");
  }

  // ---- overview ------------------------------------------------------------------------------

  function renderOverview() {
    const o = meta.overview;
    const sum = (rows, key) => rows.reduce((a, r) => a + r[key], 0);
    const card = (label, value, id) => h("div", { class: "card", id }, h("div", { class: "value" }, fmt(value)), h("div", null, label));
    const sel = meta.selection;
    const narrowed = [sel.lang && `language ${sel.lang.join(", ")}`, sel.split && `split ${sel.split.join(", ")}`,
      sel.limit && `first ${fmt(sel.limit)} rows`].filter(Boolean);
    const section = document.getElementById("tab-overview");
    fill(section,
      h("div", { class: "cards" },
        card("media items", sum(o.media, "media"), "total-media"),
        card("captions", sum(o.captions, "captions"), "total-captions"),
        card(meta.mode === "pairs" ? "MT pairs in this report" : "captions in this report", meta.rows.count, "total-rows"),
        card("outstanding failures", o.failures_total, "total-failures"),
        card("media shown as placeholders", meta.problems.count, "total-problems")),
      narrowed.length ? h("p", { class: "note" }, `Pairs, worst & best and distributions are narrowed to ${narrowed.join(", ")}; the overview and failures cover the whole corpus.`) : null,
      meta.mode === "captions" ? h("p", { class: "note" }, "This corpus has no MT captions yet: the browser shows its captions.") : null,
      h("h2", null, "Captions: split × language × origin"),
      table(["split", "language", "origin", "model", "captions"], o.captions.map((r) =>
        h("tr", { "data-key": [r.split, r.lang, r.origin, r.model ?? ""].join("|") },
          h("td", null, r.split ?? "—"), h("td", null, r.lang), h("td", null, r.origin), h("td", null, r.model ?? "—"),
          h("td", { class: "num", "data-count": r.captions }, fmt(r.captions)))), { id: "caption-counts" }),
      h("h2", null, "Media: split × modality"),
      table(["split", "modality", "items"], o.media.map((r) =>
        h("tr", null, h("td", null, r.split), h("td", null, r.modality), h("td", { class: "num" }, fmt(r.media)))), { id: "media-counts" }),
      h("h2", null, "Stage history"),
      o.history.length ? table(["stage", "status", "models and revisions", "rows in", "rows out", "failed", "seconds", "ended"],
        o.history.map((r) => h("tr", null, h("td", null, r.stage), h("td", null, r.status),
          h("td", { class: "models" }, r.models.length ? r.models.map((m) => h("div", null, m)) : "—"),
          h("td", { class: "num" }, fmt(r.rows_in)), h("td", { class: "num" }, fmt(r.rows_out)),
          h("td", { class: "num" }, fmt(r.failed)), h("td", { class: "num" }, fmt(r.seconds)), h("td", null, r.ended))),
        { id: "history" }) : h("p", { class: "muted" }, "No stage has run."),
      h("h2", null, "Failures by stage and reason"),
      o.failures.length ? table(["stage", "table", "reason", "rows"], o.failures.map((r) =>
        h("tr", null, h("td", null, r.stage), h("td", null, r.table), h("td", null, r.reason),
          h("td", { class: "num" }, fmt(r.failures)))), { id: "failure-counts" }) : h("p", { class: "muted" }, "No outstanding failures."),
      h("p", { class: "muted" }, `Feature sets: ${o.features.length ? o.features.join(", ") : "none"}. Media root: ${o.media_root ?? "unset"}.`));
  }

  // ---- pairs browser -------------------------------------------------------------------------

  const filterColumns = () => meta.columns.filter((c) => c.kind === "cat" && c.labels.length > 1);
  const sortColumns = () => meta.columns.filter((c) => c.score);
  const state = { sort: "", dir: "asc", filters: {}, q: "", page: 1, size: 50 };
  let renderToken = 0;
  let view = { key: null, order: null };

  function stateToHash() {
    const p = new URLSearchParams();
    if (state.sort) p.set("sort", state.sort);
    if (state.sort && state.dir !== "asc") p.set("dir", state.dir);
    for (const [name, value] of Object.entries(state.filters)) if (value !== "") p.set(`f.${name}`, value);
    if (state.q) p.set("q", state.q);
    if (state.page !== 1) p.set("page", state.page);
    if (state.size !== 50) p.set("size", state.size);
    const query = p.toString();
    return `#pairs${query ? "?" + query : ""}`;
  }

  function hashToState(query) {
    const p = new URLSearchParams(query);
    state.sort = sortColumns().some((c) => c.name === p.get("sort")) ? p.get("sort") : "";
    state.dir = p.get("dir") === "desc" ? "desc" : "asc";
    state.filters = {};
    for (const c of filterColumns()) state.filters[c.name] = c.labels.includes(p.get(`f.${c.name}`)) ? p.get(`f.${c.name}`) : "";
    state.q = p.get("q") || "";
    state.page = Math.max(1, parseInt(p.get("page") || "1", 10) || 1);
    state.size = [25, 50, 100, 200].includes(Number(p.get("size"))) ? Number(p.get("size")) : 50;
  }

  function syncControls() {
    document.getElementById("sort").value = state.sort;
    document.getElementById("dir").value = state.dir;
    document.getElementById("search").value = state.q;
    document.getElementById("size").value = String(state.size);
    for (const c of filterColumns()) document.getElementById(`filter-${c.name}`).value = state.filters[c.name];
    const link = stateToHash();
    document.getElementById("pairs-link").setAttribute("href", link);
    if (location.hash !== link && location.hash.startsWith("#pairs")) history.replaceState(null, "", link);
  }

  function buildControls() {
    const sort = document.getElementById("sort");
    fill(sort, h("option", { value: "" }, "report order"), ...sortColumns().map((c) => h("option", { value: c.name }, c.name)));
    fill(document.getElementById("filters"), ...filterColumns().map((c) =>
      h("label", null, c.name, " ", h("select", { id: `filter-${c.name}`, "data-column": c.name },
        h("option", { value: "" }, "all"),
        c.labels.map((label) => h("option", { value: label }, `${label} (${fmt(c.counts[label])})`))))));
    const change = (apply) => () => { apply(); state.page = 1; renderPairs(); };
    sort.addEventListener("change", change(() => { state.sort = sort.value; }));
    const dir = document.getElementById("dir");
    dir.addEventListener("change", change(() => { state.dir = dir.value; }));
    for (const c of filterColumns()) {
      const select = document.getElementById(`filter-${c.name}`);
      select.addEventListener("change", change(() => { state.filters[c.name] = select.value; }));
    }
    const search = document.getElementById("search");
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(change(() => { state.q = search.value.trim(); }), 250);
    });
    document.getElementById("controls").addEventListener("submit", (e) => {
      e.preventDefault();
      clearTimeout(timer);
      change(() => { state.q = search.value.trim(); })();
    });
    const size = document.getElementById("size");
    size.addEventListener("change", change(() => { state.size = Number(size.value); }));
    document.getElementById("prev").addEventListener("click", () => { state.page -= 1; renderPairs(); });
    document.getElementById("next").addEventListener("click", () => { state.page += 1; renderPairs(); });
    const page = document.getElementById("page");
    page.addEventListener("change", () => { state.page = parseInt(page.value, 10) || 1; renderPairs(); });

    const l = labels();
    const heads = [h("th", null, "#"), h("th", null, "media"), h("th", null, "id")];
    if (meta.has.src) heads.push(h("th", null, l.src));
    heads.push(h("th", null, l.text));
    if (meta.has.bt) heads.push(h("th", null, l.bt));
    for (const c of sortColumns()) {
      heads.push(h("th", { class: "sortable", "data-sort": c.name, title: `sort by ${c.name}`, onclick: () => {
        state.dir = state.sort === c.name && state.dir === "asc" ? "desc" : "asc";
        state.sort = c.name;
        state.page = 1;
        renderPairs();
      } }, c.name.replaceAll("_", "_\u200b")));
    }
    fill(document.querySelector("#pairs-table thead"), h("tr", null, heads));
  }

  function sortKey(name) {
    const c = colMeta(name);
    return column(name).then((values) => {
      if (c.kind === "num") return values;
      const order = c.labels.map((label, code) => [label, code]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      const rank = new Float32Array(c.labels.length);
      order.forEach(([label, code], r) => { rank[code] = label === "(missing)" ? NaN : r; });
      return Float32Array.from(values, (code) => rank[code]);
    });
  }

  async function computeOrder() {
    const key = JSON.stringify([state.sort, state.dir, state.filters, state.q]);
    if (view.key === key) return view.order;
    const n = meta.rows.count;
    let order = null;
    const active = Object.entries(state.filters).filter(([, value]) => value !== "");
    if (active.length) {
      const tests = await Promise.all(active.map(async ([name, label]) => [await column(name), colMeta(name).labels.indexOf(label)]));
      const out = new Int32Array(n);
      let m = 0;
      for (let i = 0; i < n; i++) {
        if (tests.every(([values, code]) => values[i] === code)) out[m++] = i;
      }
      order = out.subarray(0, m);
    }
    if (state.q) {
      const text = await allText();
      const q = state.q.toLowerCase();
      const source = order || range(n);
      const out = new Int32Array(source.length);
      let m = 0;
      for (const i of source) if (text[i].includes(q)) out[m++] = i;
      order = out.subarray(0, m);
    }
    if (state.sort) {
      const values = await sortKey(state.sort);
      const sign = state.dir === "desc" ? -1 : 1;
      order = Int32Array.from(order || range(n)).sort((a, b) => {
        const x = values[a], y = values[b];
        const xMissing = Number.isNaN(x), yMissing = Number.isNaN(y);
        if (xMissing || yMissing) return xMissing === yMissing ? a - b : xMissing ? 1 : -1;
        return x === y ? a - b : x < y ? -sign : sign;
      });
    }
    view = { key, order };
    return order;
  }

  function pairRow(row, index) {
    const l = labels();
    const caption = h("td", { class: "ids" }, h("div", { class: "id" }, row.id),
      h("div", { class: "muted" }, [row.lang, row.split, row.model].filter((x) => x && x !== "(missing)").join(" · ")));
    const cells = [h("td", { class: "num muted" }, index + 1), h("td", { class: "media" }, thumb(row)), caption];
    if (meta.has.src) cells.push(h("td", { class: "text src", lang: row.src_lang, title: l.src }, sourceText(row)));
    cells.push(h("td", { class: "text mt", lang: row.lang, title: l.text }, row.text));
    if (meta.has.bt) cells.push(h("td", { class: "text bt", lang: "en", title: l.bt }, row.bt ?? "—"));
    for (const c of sortColumns()) {
      const value = row[c.name];
      const flag = c.kind === "cat" && ((c.name === "keep" && value === "false") || (c.name === "noise_type" && value !== "none" && value !== "(missing)"));
      cells.push(h("td", { class: `score ${c.kind === "num" ? "num" : ""} ${flag ? "flag" : ""}`, "data-col": c.name }, fmtScore(value)));
    }
    const tr = h("tr", { class: "pair", "data-id": row.id, "data-index": index, title: "click for details" }, cells);
    tr.addEventListener("click", () => toggleDetails(tr, row, cells.length));
    return tr;
  }

  async function toggleDetails(tr, row, span) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("detail")) { next.remove(); return; }
    const body = h("td", { colspan: span });
    const detailRow = h("tr", { class: "detail" }, body);
    tr.after(detailRow);
    const parts = [h("p", null, h("b", null, "caption "), row.id, h("b", null, "  media "), row.media,
      row.origin ? [h("b", null, "  origin "), row.origin] : null)];
    if (row.problem) parts.push(h("p", { class: "problem" }, `No thumbnail: ${row.problem}`));
    if (row.details !== null && row.details !== undefined) {
      const [d] = await items("details", [row.details]);
      if (d.descriptions.length) {
        parts.push(h("h4", null, "Descriptions"), h("ul", { class: "descriptions" },
          d.descriptions.map((x) => h("li", null, h("span", { class: "muted" }, `${x.model} · ${x.prompt}: `), x.text))));
      }
      if (d.slots.length) {
        parts.push(h("h4", null, "Slots"), h("ol", { class: "slots" },
          d.slots.map((x) => h("li", { value: x.slot + 1 }, x.text, h("span", { class: "muted" }, ` (${x.size} sentences)`)))));
      }
    } else {
      parts.push(h("p", { class: "muted" }, "No descriptions or slots for this media item."));
    }
    fill(body, ...parts);
  }

  async function renderPairs() {
    const token = ++renderToken;
    const section = document.getElementById("tab-pairs");
    section.dataset.busy = "1";
    syncControls();
    const order = await computeOrder();
    const total = order ? order.length : meta.rows.count;
    const pages = Math.max(1, Math.ceil(total / state.size));
    state.page = Math.min(Math.max(1, state.page), pages);
    const start = (state.page - 1) * state.size;
    const indices = [];
    for (let k = start; k < Math.min(total, start + state.size); k++) indices.push(order ? order[k] : k);
    const rows = await items("rows", indices);
    if (token !== renderToken) return;
    syncControls();
    const span = document.querySelectorAll("#pairs-table thead th").length;
    fill(document.querySelector("#pairs-table tbody"), rows.length ? rows.map((row, k) => pairRow(row, start + k))
      : h("tr", null, h("td", { colspan: span, class: "muted" }, meta.rows.count ? "No rows match." : "This report has no rows.")));
    document.getElementById("page").value = state.page;
    document.getElementById("page").max = pages;
    document.getElementById("pages").textContent = fmt(pages);
    document.getElementById("prev").disabled = state.page <= 1;
    document.getElementById("next").disabled = state.page >= pages;
    const count = document.getElementById("pairs-count");
    count.dataset.total = total;
    count.textContent = `${fmt(total)} of ${fmt(meta.rows.count)} rows`;
    if (!CCR.timing.firstPage) CCR.timing.firstPage = performance.now();
    section.dataset.busy = "0";
  }

  // ---- worst and best ------------------------------------------------------------------------

  function pairCard(row, name) {
    return h("div", { class: "pair-card", "data-id": row.id },
      thumb(row),
      h("div", { class: "card-body" },
        h("div", null, h("b", { class: "value" }, `${name} ${fmtScore(row[name])}`), h("span", { class: "muted" }, `  ${row.id} · ${row.lang}`)),
        meta.has.src ? h("div", { class: "src" }, sourceText(row)) : null,
        h("div", { class: "mt" }, row.text),
        meta.has.bt ? h("div", { class: "bt" }, row.bt ?? "—") : null,
        row.noise_type && row.noise_type !== "none" && row.noise_type !== "(missing)" ? h("div", { class: "flag" }, `injected noise: ${row.noise_type}`) : null));
  }

  async function renderExtremes() {
    const section = document.getElementById("tab-extremes");
    if (section.dataset.done) return;
    const data = await load("extremes");
    const blocks = numericColumns().map((c) => h("div", { class: "extreme", id: `extreme-${c.name}` },
      h("h2", null, c.name),
      h("div", { class: "side-by-side" },
        h("div", { class: "lowest" }, h("h3", null, `${data[c.name].lowest.length} lowest`), data[c.name].lowest.map((r) => pairCard(r, c.name))),
        h("div", { class: "highest" }, h("h3", null, `${data[c.name].highest.length} highest`), data[c.name].highest.map((r) => pairCard(r, c.name))))));
    fill(section, ...(blocks.length ? blocks : [h("p", { class: "muted" }, "No score columns in these rows yet.")]));
    section.dataset.done = "1";
  }

  // ---- distributions -------------------------------------------------------------------------

  function histogram(s) {
    const W = 440, H = 150, L = 44, B = 22, T = 8;
    const noisy = s.noisy || s.clean.map(() => 0);
    const top = Math.max(1, ...s.clean, ...noisy);
    const bw = (W - L - 4) / s.clean.length;
    const y = (count) => T + (H - T - B) * (1 - count / top);
    const bars = [];
    s.clean.forEach((count, k) => {
      const x = L + k * bw;
      const tip = `${fmt(s.edges[k])} – ${fmt(s.edges[k + 1])}: ${count} clean${s.noisy ? `, ${noisy[k]} injected` : ""}`;
      bars.push(svg("rect", { x, y: y(count), width: Math.max(1, bw - 1), height: H - B - y(count), class: "clean" }, svg("title", {}, tip)));
      if (s.noisy && noisy[k]) bars.push(svg("rect", { x, y: y(noisy[k]), width: Math.max(1, bw - 1), height: H - B - y(noisy[k]), class: "noisy" }, svg("title", {}, tip)));
    });
    const text = (x, yy, anchor, label) => { const t = svg("text", { x, y: yy, "text-anchor": anchor }); t.textContent = label; return t; };
    return svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "histogram", role: "img" },
      ...bars,
      svg("line", { x1: L, y1: H - B, x2: W - 4, y2: H - B, class: "axis" }),
      svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
      text(L, H - 6, "start", fmt(s.edges[0])), text(W - 4, H - 6, "end", fmt(s.edges[s.edges.length - 1])),
      text(L - 4, T + 8, "end", fmt(top)), text(L - 4, H - B, "end", "0"));
  }

  function renderDistributions() {
    const section = document.getElementById("tab-distributions");
    const anyNoise = Object.values(meta.stats).some((s) => s.noisy);
    const figures = numericColumns().map((c) => {
      const s = meta.stats[c.name];
      return h("figure", { class: "distribution", id: `dist-${c.name}` },
        h("figcaption", null, h("b", null, c.name), `  ${fmt(s.count)} values, ${fmt(s.missing)} missing`),
        s.count ? histogram(s) : h("p", { class: "muted" }, "no values"),
        s.count ? h("div", { class: "muted" }, `min ${fmt(s.min)} · p5 ${fmt(s.p05)} · median ${fmt(s.median)} · mean ${fmt(s.mean)} · p95 ${fmt(s.p95)} · max ${fmt(s.max)}`) : null);
    });
    const counts = meta.columns.filter((c) => c.kind === "cat").map((c) => h("div", { class: "counts" },
      h("h3", null, c.name), table(["value", "rows"], c.labels.map((label) => h("tr", null, h("td", null, label), h("td", { class: "num" }, fmt(c.counts[label])))))));
    fill(section,
      anyNoise ? h("p", { class: "legend" }, h("span", { class: "swatch clean" }), " clean  ", h("span", { class: "swatch noisy" }), " injected noise (noise_type ≠ none)") : null,
      h("div", { class: "figures" }, figures.length ? figures : h("p", { class: "muted" }, "No score columns in these rows yet.")),
      h("h2", null, "Counts"), h("div", { class: "count-tables" }, counts));
  }

  // ---- failures ------------------------------------------------------------------------------

  function pagedList(kind, title, headers, toCells) {
    const PAGE = 100;
    const box = h("div", { class: "paged", id: `list-${kind}` });
    const total = meta[kind].count;
    let page = 1;
    const pages = Math.max(1, Math.ceil(total / PAGE));
    async function draw() {
      const indices = [];
      for (let i = (page - 1) * PAGE; i < Math.min(total, page * PAGE); i++) indices.push(i);
      const rows = await items(kind, indices);
      fill(box,
        h("h2", null, `${title} (${fmt(total)})`),
        total ? table(headers, rows.map((r) => h("tr", null, toCells(r).map((x) => h("td", null, x ?? "—"))))) : h("p", { class: "muted" }, "None."),
        pages > 1 ? h("div", { class: "pager" },
          h("button", { type: "button", disabled: page <= 1, onclick: () => { page -= 1; draw(); } }, "‹ previous"),
          ` page ${page} of ${pages} `,
          h("button", { type: "button", disabled: page >= pages, onclick: () => { page += 1; draw(); } }, "next ›")) : null);
    }
    draw().catch(showError);
    return box;
  }

  function renderFailures() {
    const section = document.getElementById("tab-failures");
    if (section.dataset.done) return;
    fill(section,
      pagedList("failures", "Corpus failures", ["stage", "table", "row", "reason", "item"], (r) => [
        r.stage, r.table, r.row, r.reason,
        r.text ? `${r.lang ? `[${r.lang}] ` : ""}${r.text}` : r.path ?? r.source]),
      pagedList("problems", "Media the report could not show", ["media", "path", "reason"], (r) => [r.media, r.path, r.reason]));
    section.dataset.done = "1";
  }

  // ---- routing -------------------------------------------------------------------------------

  function route() {
    const [tab, query] = (location.hash.slice(1) || "overview").split("?");
    const name = ["overview", "pairs", "extremes", "distributions", "failures"].includes(tab) ? tab : "overview";
    for (const section of document.querySelectorAll("section.tab")) section.hidden = section.id !== `tab-${name}`;
    for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("active", link.dataset.tab === name);
    if (name === "pairs") {
      hashToState(query || "");
      renderPairs().catch(showError);
    } else if (name === "extremes") renderExtremes().catch(showError);
    else if (name === "failures") renderFailures();
  }

  async function start() {
    meta = await load("meta");
    document.title = `ccr report: ${meta.title}`;
    document.getElementById("title").textContent = `ccr report: ${meta.title}`;
    document.getElementById("subtitle").textContent = `${meta.corpus} · generated ${meta.generated} by ccr ${meta.ccr}`;
    renderOverview();
    buildControls();
    renderDistributions();
    window.addEventListener("hashchange", route);
    route();
  }

  window.addEventListener("unhandledrejection", (e) => showError(e.reason));
  start().catch(showError);
})();
