/* assetrag web page: search, detail, ingest, generate, duplicates. Plain JS, no build step.
 * Every string from the server goes into the page through textContent / attributes (never innerHTML). */
"use strict";

const TOKEN_KEY = "assetrag.token";
const PAGE = 24;
const $ = (sel) => document.querySelector(sel);

/* ---- DOM helper -------------------------------------------------------------------------------- */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(message, kind = "info", ms = 5000) {
  const t = $("#toast");
  t.textContent = message;
  t.className = "toast" + (kind === "error" ? " error" : "");
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), ms);
}

const fmtScore = (s) => (typeof s === "number" ? s.toFixed(3) : "");
const fmtBytes = (n) =>
  n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : n >= 1024 ? Math.round(n / 1024) + " KB" : n + " B";
const splitTags = (s) => s.split(",").map((t) => t.trim()).filter(Boolean);

/* ---- API access (token kept in sessionStorage; asked for once on a 401) ------------------------ */
class ApiError extends Error {
  constructor(status, detail, data) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.data = data; // the response body (e.g. an upload with some files rejected still has a job)
  }
}

let tokenPrompt = null; // one dialog for all the requests that got a 401 together
const awaitingToken = new Set(); // start-up loaders that got a 401: run again once a token is accepted

function needsToken(loader, e) {
  const locked = e instanceof ApiError && e.status === 401;
  if (locked) awaitingToken.add(loader);
  return locked;
}

function tokenAccepted() {
  const again = [...awaitingToken];
  awaitingToken.clear();
  for (const loader of again) loader();
}

function askToken(rejected) {
  tokenPrompt ??= new Promise((resolve) => {
    const dlg = $("#token-dialog");
    $("#token-error").hidden = !rejected;
    $("#token-input").value = "";
    dlg.addEventListener(
      "close",
      () => {
        const v = $("#token-input").value.trim();
        if (v) sessionStorage.setItem(TOKEN_KEY, v);
        tokenPrompt = null;
        resolve(Boolean(v));
      },
      { once: true },
    );
    dlg.showModal();
  });
  return tokenPrompt;
}

async function api(path, { method = "GET", json, form, params } = {}, retried = false) {
  let url = path;
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      for (const item of [].concat(v)) if (item !== "" && item !== null && item !== undefined) q.append(k, item);
    }
    if ([...q].length) url += "?" + q;
  }
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) body = form;
  const res = await fetch(url, { method, headers, body, credentials: "same-origin" });
  if (res.status === 401 && !retried) {
    if (token && sessionStorage.getItem(TOKEN_KEY) === token) sessionStorage.removeItem(TOKEN_KEY);
    if (await askToken(Boolean(token))) return api(path, { method, json, form, params }, true);
  }
  if (retried && res.status !== 401 && awaitingToken.size) tokenAccepted(); // e.g. a wrong token, then the right one
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    let detail = data && data.detail !== undefined ? data.detail : data;
    if (Array.isArray(detail)) detail = detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
    throw new ApiError(res.status, detail || res.statusText, data);
  }
  return data;
}

const showError = (e) => toast(e instanceof ApiError ? e.message : String(e), "error", 8000);

/* ---- tabs -------------------------------------------------------------------------------------- */
function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const p of document.querySelectorAll(".tab-panel")) p.hidden = p.id !== "tab-" + name;
  if (name !== "search") closeDetail();
  if (name === "duplicates" && !D.loaded) loadDuplicates();
}

/* ---- library status and filter menus ---------------------------------------------------------- */
const facets = { collections: [], tags: [], sources: [] };

async function refreshLibrary() {
  try {
    const [stats, f] = await Promise.all([api("/api/stats"), api("/api/facets")]);
    Object.assign(facets, f);
    const n = stats.count ?? 0;
    const model = stats.model ? stats.model.replace(/^offline:.*/, "offline model") : "no model yet";
    $("#lib-status").textContent = `library “${stats.library}” · ${n.toLocaleString()} asset${n === 1 ? "" : "s"} · ${model}`;
    fillSelect($("#f-collection"), "All collections", f.collections);
    fillSelect($("#f-tag"), "All tags", f.tags);
    fillSelect($("#gen-collection"), "All collections", f.collections);
    fillSelect($("#gen-style"), "None", f.collections, "brand-style");
    D.loaded = false; // the library may have changed: the next look at Duplicates asks again
    if (!$("#tab-duplicates").hidden) loadDuplicates();
  } catch (e) {
    $("#lib-status").textContent = "library unavailable";
    if (!needsToken(refreshLibrary, e)) showError(e);
  }
}

function fillSelect(sel, allLabel, entries, prefer) {
  const current = sel.value || (sel.dataset.touched ? "" : prefer && entries.some((e) => e.name === prefer) ? prefer : "");
  sel.replaceChildren(h("option", { value: "" }, allLabel), ...entries.map((e) => h("option", { value: e.name }, `${e.name} (${e.count})`)));
  sel.value = entries.some((e) => e.name === current) ? current : "";
}

/* ---- search ------------------------------------------------------------------------------------ */
const S = { mode: "browse", q: "", file: null, similarTo: null, offset: 0, busy: false, selected: null };

function currentFilters() {
  return { collection: $("#f-collection").value, tag: $("#f-tag").value, source: $("#f-source").value };
}

/* how a query is searched: the mode, and whether names in the text become filters (as `assetrag search`) */
function searchOptions() {
  return { mode: $("#f-mode").value, understand: $("#f-understand").checked ? "true" : "false" };
}

function setQueryImage(file) {
  S.file = file;
  const box = $("#search-image");
  if (!file) {
    box.hidden = true;
    $("#search-image-preview").removeAttribute("src");
    $("#search-file").value = "";
    return;
  }
  $("#search-image-preview").src = URL.createObjectURL(file);
  $("#search-image-name").textContent = file.name;
  box.hidden = false;
}

async function runSearch({ append = false } = {}) {
  if (S.busy) return;
  S.busy = true;
  const f = currentFilters();
  const offset = append ? S.offset : 0;
  let page;
  try {
    if (S.mode === "similar") {
      page = await api(`/api/assets/${S.similarTo.id}/similar`, { params: { ...f, offset, limit: PAGE } });
    } else if (S.file) {
      const form = new FormData();
      form.append("image", S.file, S.file.name);
      if (S.q) form.append("q", S.q);
      for (const [k, v] of Object.entries({ ...f, ...searchOptions() })) if (v) form.append(k, v);
      form.append("offset", String(offset));
      form.append("limit", String(PAGE));
      page = await api("/api/search", { method: "POST", form });
    } else if (S.q) {
      page = await api("/api/search", { params: { q: S.q, ...f, ...searchOptions(), offset, limit: PAGE } });
    } else {
      page = await api("/api/assets", { params: { ...f, offset, limit: PAGE } });
    }
  } catch (e) {
    showError(e);
    return;
  } finally {
    S.busy = false;
  }
  renderResults(page, append);
}

function describeQuery(page) {
  if (S.mode === "similar") return `Similar to ${S.similarTo.filename}`;
  const parts = [];
  if (S.q) parts.push(`“${S.q}”`);
  if (S.file) parts.push(`image ${S.file.name}`);
  if (parts.length) return `Best matches for ${parts.join(" + ")}` + (page.items.some(isHybrid) ? " · ranked by meaning + words" : "");
  return page.total !== null && page.total !== undefined ? `${page.total.toLocaleString()} assets` : "All assets";
}

function renderResults(page, append) {
  const grid = $("#results");
  if (!append) grid.replaceChildren();
  const scored = S.mode !== "browse" && (S.mode === "similar" || S.q || S.file);
  page.items.forEach((item, i) => {
    // the calibrated "no good match" line: weak hits are dimmed behind one divider (docs/quality.md)
    if (scored && i === page.weak_from && !grid.querySelector(".weak-divider")) {
      const title = `cosine under ${page.weak_below.toFixed(2)}, the calibrated cut-off for this model`;
      grid.append(h("div", { class: "weak-divider", role: "separator", title }, "weaker matches"));
    }
    grid.append(assetCard(item, scored));
  });
  S.offset = page.next_offset ?? page.offset + page.items.length;
  $("#load-more").hidden = page.next_offset === null || page.next_offset === undefined;
  $("#results-empty").hidden = grid.children.length > 0;
  $("#result-info").textContent = describeQuery(page);
  $("#clear-search").hidden = !(S.q || S.file || S.mode === "similar");
  if (!append) renderUnderstood(page.understood);
}

/* "understood: collection = photos (from 'photos collection')", and a way to search the words as given */
function renderUnderstood(u) {
  const line = $("#understood");
  if (!u || !u.filters || !u.filters.length) {
    line.hidden = true;
    line.replaceChildren();
    return;
  }
  const parts = u.filters.map((f) => `${f.field} = ${f.values.join(" | ")} (from “${f.phrase}”)`);
  line.replaceChildren(
    h("span", { class: "understood-text" }, "Understood: " + parts.join("; ")),
    u.applied
      ? h("span", { class: "muted" }, ` · searching for “${u.text}”`)
      : h("span", { class: "muted" }, " · not used: the filters you chose win"),
    " ",
    h("button", { type: "button", id: "understood-off", class: "linkish", onclick: searchWordsAsGiven }, "Search the words as given"),
  );
  line.hidden = false;
}

function searchWordsAsGiven() {
  $("#f-understand").checked = false;
  runSearch();
}

function assetCard(item, scored) {
  return h(
    "button",
    {
      type: "button",
      class: item.weak && scored ? "asset weak" : "asset",
      dataset: { id: item.id, filename: item.filename },
      title: item.path,
      onclick: () => openDetail(item.id),
    },
    h("div", { class: "thumb" }, h("img", { src: item.thumb_url, alt: item.filename, loading: "lazy", decoding: "async" })),
    item.play_url ? playControl(item) : null,
    scored ? h("span", { class: "score", title: scoreTitle(item) }, h("small", {}, "sim "), fmtScore(item.score)) : null,
    scored ? h("span", { class: "rank", title: scoreTitle(item) }, "#" + item.rank) : null,
    h(
      "div",
      { class: "asset-info" },
      h("span", { class: "asset-name" }, item.label || item.filename),
      h(
        "span",
        { class: "asset-sub" },
        item.collection,
        item.source === "synthetic" ? h("span", { class: "badge synthetic" }, " synthetic") : null,
      ),
    ),
  );
}

/* The badge is the cosine similarity. A hybrid list is ordered by meaning and words together (fused or
 * re-ranked), so the similarity need not fall down the list: the tooltip and the result line say so. */
const isHybrid = (item) => item.fused_score !== null && item.fused_score !== undefined;

function scoreTitle(item) {
  const sim = `similarity ${fmtScore(item.score)}: how close the image is to the query in meaning`;
  if (!isHybrid(item)) return `${sim}. The list is ordered by it.`;
  const side = (r) => (r === null || r === undefined ? "not a candidate" : "#" + r);
  return (
    `${sim}. Ranked #${item.rank} by meaning and words (file names, tags, captions) together: ` +
    `by meaning ${side(item.vector_rank)}, by words ${side(item.lexical_rank)}.`
  );
}

// a video frame's card: ▶ plays the original video from the frame's time (`play_url` ends in `#t=<seconds>`,
// a media fragment; the server answers the player's Range requests)
function playControl(item) {
  return h(
    "span",
    {
      class: "play",
      role: "link",
      tabindex: "0",
      title: "play from " + item.time + "s",
      dataset: { href: item.play_url },
      onclick: (ev) => {
        ev.stopPropagation();
        openPlayer(item);
      },
      onkeydown: (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          ev.stopPropagation();
          openPlayer(item);
        }
      },
    },
    "▶",
  );
}

function openPlayer(item) {
  let dlg = $("#player");
  if (!dlg) {
    const video = h("video", { controls: true, playsinline: true, preload: "metadata" });
    const close = h("button", { type: "button", class: "player-close", onclick: () => dlg.close() }, "Close");
    dlg = h("dialog", { id: "player" }, h("div", { class: "player-title" }), video, close);
    dlg.addEventListener("close", () => video.pause());
    document.body.append(dlg);
  }
  dlg.querySelector(".player-title").textContent = item.label || item.filename;
  const video = dlg.querySelector("video");
  video.src = item.play_url;
  dlg.showModal();
  video.play().catch(() => {}); // autoplay may be refused; the controls remain
}

function startSearch() {
  S.q = $("#q").value.trim();
  S.mode = S.q || S.file ? "query" : "browse";
  S.similarTo = null;
  closeDetail();
  runSearch();
}

function clearSearch() {
  $("#q").value = "";
  setQueryImage(null);
  startSearch();
}

/* ---- detail drawer ----------------------------------------------------------------------------- */
async function openDetail(id) {
  let a;
  try {
    a = await api(`/api/assets/${id}`);
  } catch (e) {
    showError(e);
    return;
  }
  S.selected = a;
  for (const c of document.querySelectorAll(".asset.selected")) c.classList.remove("selected");
  document.querySelector(`.asset[data-id="${a.id}"]`)?.classList.add("selected");
  $("#detail-title").textContent = a.filename;
  $("#detail-img").src = a.thumb_url + (a.thumb_url.includes("?") ? "&" : "?") + "size=1024";
  $("#detail-img").alt = a.filename;
  $("#detail-open").href = a.image_url;
  $("#detail-open").hidden = !a.file_available;
  const rows = [
    ["Collection", a.collection],
    ["Source", a.source],
    ["Size", `${a.width} × ${a.height} px · ${fmtBytes(a.size)}`],
    ["Path", a.path],
    ...(a.paths.length > 1 ? [["Copies", a.paths.slice(1).join("\n")]] : []),
    ["Id", a.id, "mono"],
    ...Object.entries(a.metadata || {})
      .filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => [k, String(v)]),
  ];
  $("#detail-meta").replaceChildren(...rows.flatMap(([k, v, cls]) => [h("dt", {}, k), h("dd", { class: cls }, v)]));
  $("#detail-tags").replaceChildren(
    ...a.tags.map((t) => h("button", { type: "button", class: "chip", title: "Filter by this tag", onclick: () => filterByTag(t) }, t)),
  );
  const hasLineage = a.lineage && Object.keys(a.lineage).length > 0;
  $("#detail-lineage").hidden = !hasLineage;
  if (hasLineage) {
    $("#detail-refs").replaceChildren(...(a.references || []).map((r) => miniTile(r, () => openDetail(r.id), r.item)));
    $("#detail-lineage-json").textContent = JSON.stringify(a.lineage, null, 2);
  }
  $("#detail").hidden = false;
  $("#scrim").hidden = false;
}

function closeDetail() {
  $("#detail").hidden = true;
  $("#scrim").hidden = true;
}

function filterByTag(tag) {
  const sel = $("#f-tag");
  if (![...sel.options].some((o) => o.value === tag)) sel.append(h("option", { value: tag }, tag));
  sel.value = tag;
  closeDetail();
  showTab("search");
  runSearch();
}

function findSimilar() {
  if (!S.selected) return;
  S.mode = "similar";
  S.similarTo = S.selected;
  closeDetail();
  showTab("search");
  runSearch();
}

function miniTile(r, onclick, extra) {
  return h(
    "button",
    { type: "button", class: "mini", title: r.filename || r.id, dataset: { id: r.id }, onclick },
    h("div", { class: "thumb" }, r.thumb_url ? h("img", { src: r.thumb_url, alt: r.filename || "", loading: "lazy" }) : null),
    h("span", {}, r.filename || r.id.slice(0, 10), extra ? ` · ${extra}` : ""),
  );
}

/* ---- ingest ------------------------------------------------------------------------------------ */
const jobs = new Map();
let pollTimer = null;

function trackJob(job) {
  jobs.set(job.id, job);
  renderJobs();
  schedulePoll();
}

function schedulePoll() {
  if (pollTimer) return;
  pollTimer = setTimeout(async () => {
    pollTimer = null;
    const active = [...jobs.values()].filter((j) => j.status === "queued" || j.status === "running");
    for (const j of active) {
      try {
        const fresh = await api(`/api/jobs/${j.id}`);
        jobs.set(j.id, fresh);
        if (fresh.status === "done" || fresh.status === "failed") onJobFinished(fresh);
      } catch (e) {
        showError(e);
      }
    }
    renderJobs();
    if ([...jobs.values()].some((j) => j.status === "queued" || j.status === "running")) schedulePoll();
  }, 400);
}

function onJobFinished(job) {
  if (job.kind === "ingest") {
    refreshLibrary();
    if (job.status === "done") {
      const r = job.result;
      toast(`Ingest finished: ${r.added} added, ${r.updated} updated, ${r.unchanged} unchanged, ${r.errors.length} error(s)`);
      if (S.mode === "browse") runSearch();
    } else toast("Ingest failed: " + job.error, "error", 8000);
  }
  const waiter = jobWaiters.get(job.id);
  if (waiter) {
    jobWaiters.delete(job.id);
    waiter(job);
  }
}

const jobWaiters = new Map();
const waitForJob = (job) => new Promise((resolve) => { jobWaiters.set(job.id, resolve); trackJob(job); });

function renderJobs() {
  const box = $("#jobs");
  const list = [...jobs.values()].filter((j) => j.kind === "ingest").sort((a, b) => b.created - a.created);
  if (!list.length) {
    box.replaceChildren(h("p", { class: "empty" }, "No jobs yet."));
    return;
  }
  box.replaceChildren(...list.map(jobCard));
}

function jobTitle(job) {
  const p = job.params || {};
  if (p.files) return `Upload · ${p.files.length} file${p.files.length === 1 ? "" : "s"} → ${p.collection}`;
  if (p.path) return `Folder · ${p.path}`;
  return job.kind;
}

function jobCard(job, title) {
  const pr = job.progress;
  const bar = h("div", { class: "bar" + (pr.fraction === null && job.status === "running" ? " indeterminate" : "") + (job.status === "done" ? " done" : job.status === "failed" ? " failed" : "") }, h("div"));
  bar.firstChild.style.width = `${Math.round((pr.fraction ?? (job.status === "failed" ? 1 : 0)) * 100)}%`;
  let detail;
  if (job.status === "failed") detail = h("div", { class: "job-detail error" }, job.error);
  else if (job.status === "done" && job.result) {
    const r = job.result;
    detail = h(
      "div",
      { class: "job-detail" },
      `${r.scanned} scanned · ${r.added} added · ${r.updated} updated · ${r.unchanged} unchanged · ${r.errors.length} error(s) · ${r.elapsed_s.toFixed(1)} s`,
      ...r.errors.slice(0, 5).map((e) => h("div", { class: "error" }, `${e.path}: ${e.reason}`)),
    );
  } else detail = h("div", { class: "job-detail" }, pr.total ? `${pr.description} · ${pr.done} / ${pr.total}` : pr.description);
  return h(
    "div",
    { class: "card job", dataset: { id: job.id, status: job.status } },
    h("div", { class: "job-title" }, title || jobTitle(job)),
    h("span", { class: "job-status " + job.status }, job.status),
    bar,
    detail,
  );
}

function setUploadFiles(files) {
  const list = [...files].filter((f) => f.type.startsWith("image/") || /\.(jpe?g|png|webp|gif|bmp|tiff?)$/i.test(f.name));
  uploadFiles = list;
  $("#upload-btn").disabled = list.length === 0;
  $("#upload-label").replaceChildren(
    ...(list.length
      ? [`${list.length} image${list.length === 1 ? "" : "s"} selected: ${list.slice(0, 3).map((f) => f.name).join(", ")}${list.length > 3 ? "…" : ""}`]
      : ["Drop images here or ", h("u", {}, "choose files")]),
  );
}
let uploadFiles = [];

async function upload(ev) {
  ev.preventDefault();
  if (!uploadFiles.length) return;
  const form = new FormData();
  for (const f of uploadFiles) form.append("files", f, f.name);
  const coll = $("#upload-collection").value.trim();
  if (coll) form.append("collection", coll);
  for (const t of splitTags($("#upload-tags").value)) form.append("tag", t);
  $("#upload-btn").disabled = true;
  try {
    let res;
    try {
      res = await api("/api/ingest/uploads", { method: "POST", form });
    } catch (e) {
      if (!(e instanceof ApiError && e.data && e.data.job)) throw e;
      res = e.data; // 422: some files were rejected, the others are being ingested
    }
    for (const r of res.rejected) toast(`${r.name}: ${r.reason}`, "error", 8000);
    trackJob(res.job);
    setUploadFiles([]);
    $("#upload-input").value = "";
  } catch (e) {
    showError(e);
    $("#upload-btn").disabled = false;
  }
}

async function ingestFolder(ev) {
  ev.preventDefault();
  try {
    const job = await api("/api/ingest", {
      method: "POST",
      json: {
        path: $("#folder-path").value.trim(),
        collection: $("#folder-collection").value.trim() || null,
        tags: splitTags($("#folder-tags").value),
        prune: $("#folder-prune").checked,
      },
    });
    trackJob(job);
  } catch (e) {
    showError(e);
  }
}

/* ---- generate ---------------------------------------------------------------------------------- */
// A plan is assetrag.rag's Plan.to_dict(): items [{item, candidates, chosen}], chosen [refs], dropped,
// withheld, notes, limit. The page groups the chosen references by the item they stand for; the user's
// edit goes back as refs: {item label: [asset ids]}.
const G = { plan: null, groups: [], request: null, sent: [], givenChanged: false };
const GROUP_TITLES = { style: "Brand style", "whole brief": "Whole brief", given: "Your images" };

/* The user's own reference images (multipart field `ref` of /api/generate and /api/generate/plan): checked here
 * before sending (type, size, count: the server's limits from /api/generate/backends), previewed, removable.
 * Each is sent under a name unique in the request: the plan names an upload by it (`path`), and by its sha256
 * (`id`); an upload is not in the library, so its tile shows the local preview, never a library thumbnail. */
const GIVEN = { files: [], limits: { max_files: 8, max_bytes: 50 * 1048576 } };
const GIVEN_TYPES = /^image\/(jpeg|png|webp|gif|bmp|tiff)$/;
const GIVEN_EXT = /\.(jpe?g|png|webp|gif|bmp|tiff?)$/i;

function addGivenFiles(files) {
  const errors = [];
  for (const file of files) {
    const known = file.type ? GIVEN_TYPES.test(file.type) : GIVEN_EXT.test(file.name);
    if (!known) errors.push(`${file.name}: not an image of an accepted type (jpg, png, webp, gif, bmp or tiff)`);
    else if (file.size > GIVEN.limits.max_bytes) errors.push(`${file.name}: ${fmtBytes(file.size)}, larger than the ${fmtBytes(GIVEN.limits.max_bytes)} limit`);
    else if (file.size === 0) errors.push(`${file.name}: an empty file`);
    else if (GIVEN.files.some((g) => g.file.name === file.name && g.file.size === file.size && g.file.lastModified === file.lastModified)) continue;
    else if (GIVEN.files.length >= GIVEN.limits.max_files) errors.push(`${file.name}: at most ${GIVEN.limits.max_files} images per generation`);
    else GIVEN.files.push({ file, name: uniqueName(file.name), url: URL.createObjectURL(file) });
  }
  $("#gen-ref-input").value = "";
  $("#gen-ref-error").replaceChildren(...errors.map((e) => h("span", { class: "given-error" }, e)));
  $("#gen-ref-error").hidden = !errors.length;
  givenChanged();
}

function uniqueName(name) {
  const taken = new Set(GIVEN.files.map((g) => g.name));
  if (!taken.has(name)) return name;
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  let n = 2;
  while (taken.has(`${stem} (${n})${ext}`)) n++;
  return `${stem} (${n})${ext}`;
}

function removeGiven(entry) {
  GIVEN.files = GIVEN.files.filter((g) => g !== entry);
  if (!G.sent.includes(entry)) URL.revokeObjectURL(entry.url); // a planned one still shows in the plan
  $("#gen-ref-error").hidden = true;
  givenChanged();
  $("#gen-ref-add").focus();
}

function givenChanged() {
  $("#gen-ref-list").replaceChildren(
    ...GIVEN.files.map((g) =>
      h(
        "li",
        { class: "given-item", dataset: { name: g.name } },
        h("img", { src: g.url, alt: "" }),
        h("span", { class: "given-name", title: g.name }, g.name),
        h("span", { class: "muted" }, fmtBytes(g.file.size)),
        h("button", { type: "button", class: "icon-btn", title: `Remove ${g.name}`, "aria-label": `Remove ${g.name}`, onclick: () => removeGiven(g) }, "×"),
      ),
    ),
  );
  const same = GIVEN.files.length === G.sent.length && GIVEN.files.every((g, i) => g === G.sent[i]);
  if (G.plan && G.givenChanged !== !same) {
    G.givenChanged = !same;
    renderPlan();
  }
}

/* a request with the user's images: the JSON as field `request`, each image as a `ref` file */
function withGiven(body, entries) {
  if (!entries.length) return { json: body };
  const form = new FormData();
  form.append("request", JSON.stringify(body));
  for (const g of entries) form.append("ref", g.file, g.name);
  return { form };
}

/* the upload a plan's reference stands for (the plan gives its path as the name it was sent under), if any */
function givenFor(ref) {
  if (!ref || ref.role !== "given") return null;
  return G.sent.find((g) => g.name === ref.path || g.id === ref.id) || null;
}

async function makePlan(ev) {
  ev?.preventDefault();
  const brief = $("#brief").value.trim();
  if (!brief) return;
  G.request = {
    brief,
    backend: $("#gen-backend").value || null,
    collection: $("#gen-collection").value || null,
    style_collection: $("#gen-style").value || null,
  };
  const sent = [...GIVEN.files];
  $("#plan-btn").disabled = true;
  try {
    G.plan = await api("/api/generate/plan", { method: "POST", ...withGiven(G.request, sent) });
  } catch (e) {
    showError(e);
    return;
  } finally {
    $("#plan-btn").disabled = false;
  }
  for (const g of G.sent) if (!sent.includes(g) && !GIVEN.files.includes(g)) URL.revokeObjectURL(g.url);
  G.sent = sent;
  G.givenChanged = false;
  for (const r of [...(G.plan.chosen || []), ...(G.plan.dropped || [])]) {
    const g = r.role === "given" ? sent.find((s) => s.name === r.path) : null;
    if (g) g.id = r.id; // its sha256, as the plan and the lineage name it
  }
  const chosen = G.plan.chosen || [];
  const itemNames = new Set(G.plan.items.map((it) => it.item));
  G.groups = G.plan.items.map((it) => ({
    label: it.item,
    title: it.item,
    bound: Boolean(it.bound),
    candidates: it.candidates || [],
    refs: chosen.filter((r) => r.item === it.item),
  }));
  for (const label of Object.keys(GROUP_TITLES)) {
    const refs = chosen.filter((r) => r.item === label && !itemNames.has(label));
    if (refs.length || (label === "style" && G.request.style_collection)) {
      G.groups.push({ label, title: GROUP_TITLES[label], candidates: [], refs, extra: true });
    }
  }
  renderPlan();
  $("#gen-result").hidden = true;
}

const chosenCount = () => G.groups.reduce((n, g) => n + g.refs.length, 0);

function renderPlan() {
  const n = chosenCount();
  const limit = G.plan.limit;
  const over = n > limit;
  $("#plan-meta").textContent = `${G.plan.backend} · ${n} of at most ${limit} reference${limit === 1 ? "" : "s"}` + (G.plan.external ? " · sent to an external service" : "");
  $("#plan-meta").className = over ? "error" : "muted";
  const notSent = [...(G.plan.withheld || [])];
  const extras = [];
  for (const r of G.plan.dropped || []) {
    if (givenFor(r)) extras.push(h("p", { class: "error" }, `Your image ${r.path} is not sent: ${r.note}`));
  }
  if (G.givenChanged) extras.push(h("p", { class: "error", id: "plan-stale" }, "Your images changed since this plan: plan again to use them."));
  if (notSent.length) {
    extras.push(
      h("div", { class: "plan-item" }, h("div", { class: "plan-item-head" }, h("span", { class: "label" }, "Withheld"), h("span", { class: "query" }, "internal-only assets never leave this machine")),
        h("div", { class: "mini-grid" }, ...notSent.map((r) => miniTile(r, null, r.note)))),
    );
  }
  for (const note of G.plan.notes || []) extras.push(h("p", { class: "muted" }, note));
  $("#plan-items").replaceChildren(...G.groups.map(planGroup), ...extras);
  $("#generate-btn").disabled = over || n === 0 || G.givenChanged;
  $("#plan").hidden = false;
}

function planGroup(group) {
  const wrap = h("div", { class: "plan-item", dataset: { label: group.label } });
  const refs = h("div", { class: "refs" });
  const candidates = h("div", { class: "candidates", hidden: true });

  const pick = (replaceAt) => (c) => {
    const ref = { id: c.id, filename: c.filename, score: c.score, thumb_url: c.thumb_url, item: group.label };
    if (replaceAt === null) group.refs.push(ref);
    else group.refs.splice(replaceAt, 1, ref);
    renderPlan();
  };
  const showCandidates = async (replaceAt, searchMore = false) => {
    const taken = new Set(G.groups.flatMap((g) => g.refs.map((r) => r.id)));
    let list = group.candidates.filter((c) => !taken.has(c.id));
    if (searchMore || !list.length) {
      candidates.hidden = false;
      candidates.replaceChildren(h("div", { class: "candidates-head" }, "Searching…"));
      try {
        // as the planner searches: hybrid, with the plan's filters as given (no names read from the words)
        const params = { q: group.label === "style" || group.label === "whole brief" ? G.request.brief : group.label, limit: 18, understand: "false" };
        const read = (G.plan.understood?.filters || []).filter((f) => f.field === "collection").flatMap((f) => f.values);
        const coll = group.label === "style" ? G.request.style_collection : G.request.collection || read;
        if (coll && coll.length) params.collection = coll;
        list = (await api("/api/search", { params })).items.filter((c) => !taken.has(c.id));
      } catch (e) {
        showError(e);
        candidates.hidden = true;
        return;
      }
    }
    candidates.replaceChildren(
      h(
        "div",
        { class: "candidates-head" },
        h("span", {}, replaceAt === null ? `Add a reference for “${group.title}”` : `Swap “${group.refs[replaceAt].filename}” for…`),
        h(
          "span",
          {},
          searchMore ? null : h("button", { type: "button", class: "btn ghost small", onclick: () => showCandidates(replaceAt, true) }, "Search more"),
          h("button", { type: "button", class: "btn ghost small", onclick: () => (candidates.hidden = true) }, "Cancel"),
        ),
      ),
      list.length
        ? h("div", { class: "mini-grid" }, ...list.map((c) => miniTile(c, () => pick(replaceAt)(c), fmtScore(c.score))))
        : h("p", { class: "muted" }, "No other candidates."),
    );
    candidates.hidden = false;
  };

  group.refs.forEach((r, i) => {
    const mine = givenFor(r);
    const src = mine ? mine.url : r.thumb_url;
    const name = mine ? mine.name : r.filename || r.id.slice(0, 10);
    refs.append(
      h(
        "div",
        { class: mine ? "ref given-ref" : "ref", dataset: { id: r.id, given: mine ? mine.name : null } },
        h("div", { class: "thumb" }, src ? h("img", { src, alt: name }) : null),
        h("div", { class: "ref-info" }, h("span", { title: name }, name), mine ? h("span", { class: "badge yours", title: "your image, uploaded with the brief (not in the library)" }, "yours") : h("span", { class: "mono" }, fmtScore(r.score))),
        h(
          "div",
          { class: "ref-tools" },
          h("button", { type: "button", class: "swap", title: "Swap for another asset", "aria-label": "Swap", onclick: () => showCandidates(i) }, "⇄"),
          h("button", { type: "button", class: "remove", title: "Remove this reference", "aria-label": "Remove", onclick: () => { group.refs.splice(i, 1); renderPlan(); } }, "×"),
        ),
      ),
    );
  });
  refs.append(h("button", { type: "button", class: "ref add", onclick: () => showCandidates(null) }, "+ Add"));
  wrap.append(
    h(
      "div",
      { class: "plan-item-head" },
      h("span", { class: "label" }, group.title),
      h("span", { class: "badge" }, `${group.refs.length} ref${group.refs.length === 1 ? "" : "s"}`),
    ),
    ...(group.bound && group.refs.some(givenFor)
      ? [h("p", { class: "muted bound-note" }, "Bound to your image: it points at it, so the library is not searched.")]
      : []),
    refs,
    candidates,
  );
  return wrap;
}

async function generate() {
  if (!G.plan) return;
  const refs = {};
  for (const g of G.groups) if (g.refs.length) refs[g.label] = g.refs.map((r) => r.id);
  $("#generate-btn").disabled = true;
  const progress = $("#gen-progress");
  progress.hidden = false;
  $("#gen-result").hidden = true;
  let job;
  try {
    const body = { ...G.request, refs, store_back: $("#gen-store").checked };
    job = await api("/api/generate", { method: "POST", ...withGiven(body, G.sent) });
  } catch (e) {
    showError(e);
    $("#generate-btn").disabled = false;
    progress.hidden = true;
    return;
  }
  const render = (j) => progress.replaceChildren(jobCard({ ...j, params: {} }, `Generating with ${G.plan.backend}`));
  render(job);
  const timer = setInterval(() => jobs.has(job.id) && render(jobs.get(job.id)), 300);
  const done = await waitForJob(job);
  clearInterval(timer);
  $("#generate-btn").disabled = false;
  progress.hidden = true;
  if (done.status === "failed") {
    toast("Generation failed: " + done.error, "error", 10000);
    return;
  }
  renderResult(done.result);
  refreshLibrary();
}

function renderResult({ plan, result }) {
  const fid = result.fidelity || {};
  const perRef = new Map((fid.per_reference || []).map((p) => [p.id, p.score]));
  const mean = typeof fid.mean === "number" ? fid.mean : null;
  const cls = mean === null ? "" : mean >= 0.7 ? " good" : mean >= 0.5 ? " fair" : " poor";
  const refs = plan.chosen || [];
  const asset = result.asset;
  const box = $("#gen-result");
  box.replaceChildren(
    h("div", { class: "plan-head" }, h("h2", {}, "Result"), h("span", { class: "muted" }, `${result.backend} · ${result.model} · ${result.width} × ${result.height} px · ${result.elapsed_s.toFixed(1)} s`)),
    h(
      "div",
      { class: "gen-result-body" },
      h("div", { class: "gen-output" }, h("img", { id: "gen-image", src: result.output_url, alt: "generated image" })),
      h(
        "div",
        {},
        mean === null
          ? h("p", { class: "muted fidelity-note", id: "gen-fidelity-note" }, result.backend === "board" ? "No fidelity for a reference board: it shows the references themselves." : "Fidelity was not measured.")
          : h(
              "div",
              { class: "fidelity" + cls },
              h("strong", { id: "gen-fidelity" }, mean.toFixed(3)),
              h("span", { class: "muted" }, `mean fidelity to its references (min ${fid.min.toFixed(3)})`),
            ),
        result.flagged ? h("p", { class: "error" }, "Below the fidelity threshold: check it before use.") : null,
        ...result.warnings.map((w) => h("p", { class: "muted" }, w)),
        h("h3", {}, `References (${refs.length})`),
        h(
          "div",
          { class: "mini-grid", id: "gen-refs" },
          ...refs.map((r) => {
            const score = perRef.has(r.id) ? `fidelity ${fmtScore(perRef.get(r.id))}` : r.item;
            const mine = r.role === "given" ? G.sent.find((g) => g.id === r.id) : null;
            if (mine) return miniTile({ id: r.id, filename: mine.name, thumb_url: mine.url }, () => window.open(mine.url, "_blank", "noopener"), `yours · ${score}`);
            return miniTile(r, () => { showTab("search"); openDetail(r.id); }, score);
          }),
        ),
        h(
          "div",
          { class: "drawer-actions" },
          h("a", { class: "btn", href: result.output_url, target: "_blank", rel: "noopener" }, "Open image"),
          asset ? h("button", { type: "button", class: "btn", onclick: () => { showTab("search"); openDetail(asset.id); } }, "Open in library") : null,
        ),
        h("details", {}, h("summary", { class: "muted" }, "Prompt sent"), h("pre", {}, result.prompt)),
      ),
    ),
  );
  box.hidden = false;
}

async function loadBackends() {
  let list = [{ name: "board", available: true }];
  let dflt = "board";
  try {
    const res = await api("/api/generate/backends");
    if (res.items.length) list = res.backends || res.items.map((name) => ({ name, available: true }));
    dflt = res.default;
    if (res.uploads) GIVEN.limits = res.uploads;
  } catch (e) {
    needsToken(loadBackends, e); /* the select keeps "board" */
  }
  const sel = $("#gen-backend");
  const kept = sel.value; // a reload after the token keeps the user's choice
  sel.replaceChildren(
    ...list.map((b) => h("option", { value: b.name, disabled: !b.available, title: b.reason }, b.available ? b.name : `${b.name} (not set up)`)),
  );
  const usable = list.filter((b) => b.available).map((b) => b.name);
  sel.value = usable.includes(kept) ? kept : usable.includes(dflt) ? dflt : usable[0] || "";
  const off = list.filter((b) => !b.available);
  $("#gen-backend-note").replaceChildren(...(off.length ? ["Not set up on this server: ", off.map((b) => `${b.name} (${b.reason})`).join("; ")] : []));
  $("#gen-backend-note").hidden = !off.length;
  syncStoreDefault();
}

function syncStoreDefault() {
  // a reference board is an artifact for people; images from a model are worth keeping (with lineage)
  if (!$("#gen-store").dataset.touched) $("#gen-store").checked = $("#gen-backend").value !== "board";
}

/* ---- duplicates -------------------------------------------------------------------------------- */
// GET /api/duplicates: a page of groups, exact copies first, then near-duplicates (perceptual hash, `distance`
// in bits to the group's first member), then look-alikes (embedding, `score` in cosine to the first member).
const D = { offset: 0, busy: false, loaded: false };
const DUP_KINDS = {
  exact: { title: "Exact copies", method: "same bytes, several paths" },
  near: { title: "Near-duplicates", method: "perceptual hash" },
  similar: { title: "Look-alikes", method: "embedding similarity" },
};

function duplicateParams() {
  const params = { embedding: $("#dup-embedding").checked ? "true" : "false" };
  const distance = $("#dup-distance").value.trim();
  const threshold = $("#dup-threshold").value.trim();
  if (distance) params.distance = distance;
  if (threshold && $("#dup-embedding").checked) params.threshold = threshold;
  return params;
}

function showDupError(message) {
  $("#dup-error").textContent = message || "";
  $("#dup-error").hidden = !message;
}

async function loadDuplicates({ append = false } = {}) {
  if (D.busy) return;
  for (const input of [$("#dup-distance"), $("#dup-threshold")]) {
    if (!input.checkValidity()) {
      showDupError(`${input.closest("label").firstChild.textContent.trim()}: ${input.validationMessage}`);
      input.focus();
      return;
    }
  }
  D.busy = true;
  $("#dup-btn").disabled = true;
  $("#dup-info").textContent = "Looking for duplicates…";
  const offset = append ? D.offset : 0;
  let page;
  try {
    page = await api("/api/duplicates", { params: { ...duplicateParams(), offset, limit: PAGE } });
  } catch (e) {
    showDupError(e instanceof ApiError ? e.message : String(e));
    $("#dup-info").textContent = "";
    return;
  } finally {
    D.busy = false;
    $("#dup-btn").disabled = false;
  }
  D.loaded = true;
  showDupError("");
  renderDuplicates(page, append);
}

function renderDuplicates(page, append) {
  const box = $("#dup-groups");
  if (!append) box.replaceChildren();
  box.append(...page.items.map(duplicateGroup));
  D.offset = page.next_offset ?? page.offset + page.items.length;
  $("#dup-more").hidden = page.next_offset === null || page.next_offset === undefined;
  $("#dup-empty").hidden = box.children.length > 0;
  if (!$("#dup-distance").value) $("#dup-distance").value = page.distance; // the server's default, shown
  const total = page.total ?? box.children.length;
  $("#dup-info").textContent = total ? `${total} group${total === 1 ? "" : "s"}` : "";
  const notes = [];
  if (typeof page.threshold === "number") notes.push(`Look-alikes: cosine ≥ ${page.threshold.toFixed(2)}.`);
  if (page.similar_note) notes.push(`Look-alikes: ${page.similar_note}.`);
  if (page.not_hashed) {
    const n = page.not_hashed;
    notes.push(`${n} asset${n === 1 ? " was" : "s were"} stored before hashes existed and cannot be compared by hash (assetrag duplicates --rehash hashes them).`);
  }
  $("#dup-notes").replaceChildren(...notes.map((n) => h("p", { class: "muted" }, n)));
}

function memberMeasure(kind, m, i) {
  if (kind === "exact") return i === 0 ? "first path" : "same bytes";
  if (i === 0) return "compared with the others";
  if (kind === "near") return m.distance ? `hash: ${m.distance} of 64 bits differ` : "hash: identical";
  return `cosine ${fmtScore(m.score)}`;
}

function duplicateGroup(g) {
  const kind = DUP_KINDS[g.kind] || { title: g.kind, method: "" };
  const label = `${kind.title}: ${g.size} file${g.size === 1 ? "" : "s"}`;
  return h(
    "section",
    { class: "dup-group", dataset: { kind: g.kind }, "aria-label": label },
    h(
      "div",
      { class: "dup-group-head" },
      h("span", { class: "badge dup-kind " + g.kind }, kind.title),
      h("span", { class: "muted" }, `${g.size} files · ${kind.method}`),
    ),
    h(
      "ul",
      { class: "dup-members" },
      ...g.members.map((m, i) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "dup-member",
              title: `Open ${m.path}`,
              dataset: { id: m.id, filename: m.filename },
              onclick: () => openDetail(m.id),
            },
            h("div", { class: "thumb" }, h("img", { src: m.thumb_url, alt: m.filename, loading: "lazy", decoding: "async" })),
            h(
              "span",
              { class: "dup-info" },
              h("span", { class: "dup-name" }, m.filename),
              h("span", { class: "dup-path" }, m.path),
              h("span", { class: "dup-measure" }, memberMeasure(g.kind, m, i)),
            ),
          ),
        ),
      ),
    ),
  );
}

/* ---- drag and drop ----------------------------------------------------------------------------- */
function wireDrop(target, onFiles, overlay) {
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  target.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    overlay ? (overlay.hidden = false) : target.classList.add("over");
  });
  target.addEventListener("dragover", (e) => hasFiles(e) && e.preventDefault());
  target.addEventListener("dragleave", () => {
    if (--depth <= 0) {
      depth = 0;
      overlay ? (overlay.hidden = true) : target.classList.remove("over");
    }
  });
  target.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    overlay ? (overlay.hidden = true) : target.classList.remove("over");
    if (e.dataTransfer.files.length) onFiles(e.dataTransfer.files);
  });
}

/* ---- start ------------------------------------------------------------------------------------- */
function init() {
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); startSearch(); });
  $("#search-file").addEventListener("change", (e) => { if (e.target.files[0]) { setQueryImage(e.target.files[0]); startSearch(); } });
  $("#search-image-clear").addEventListener("click", () => { setQueryImage(null); startSearch(); });
  $("#clear-search").addEventListener("click", clearSearch);
  for (const id of ["#f-collection", "#f-tag", "#f-source"]) {
    $(id).addEventListener("change", () => { $(id).dataset.touched = "1"; runSearch(); });
  }
  for (const id of ["#f-mode", "#f-understand"]) $(id).addEventListener("change", () => { if (S.q) runSearch(); });
  $("#load-more").addEventListener("click", () => runSearch({ append: true }));
  wireDrop($("#tab-search"), (files) => { setQueryImage(files[0]); startSearch(); }, $("#drop-overlay"));

  $("#detail-close").addEventListener("click", closeDetail);
  $("#scrim").addEventListener("click", closeDetail);
  $("#similar-btn").addEventListener("click", findSimilar);
  document.addEventListener("keydown", (e) => e.key === "Escape" && closeDetail());

  $("#upload-input").addEventListener("change", (e) => setUploadFiles(e.target.files));
  wireDrop($("#upload-drop"), setUploadFiles);
  $("#upload-form").addEventListener("submit", upload);
  $("#folder-form").addEventListener("submit", ingestFolder);

  $("#brief-form").addEventListener("submit", makePlan);
  $("#generate-btn").addEventListener("click", generate);
  $("#gen-style").addEventListener("change", () => ($("#gen-style").dataset.touched = "1"));
  $("#gen-backend").addEventListener("change", syncStoreDefault);
  $("#gen-store").addEventListener("change", () => ($("#gen-store").dataset.touched = "1"));
  $("#gen-ref-add").addEventListener("click", () => $("#gen-ref-input").click());
  $("#gen-ref-input").addEventListener("change", (e) => addGivenFiles(e.target.files));
  wireDrop($("#brief-form"), addGivenFiles);

  $("#dup-form").addEventListener("submit", (e) => { e.preventDefault(); loadDuplicates(); });
  $("#dup-embedding").addEventListener("change", () => ($("#dup-threshold").disabled = !$("#dup-embedding").checked));
  $("#dup-more").addEventListener("click", () => loadDuplicates({ append: true }));

  refreshLibrary().then(() => runSearch());
  loadBackends();
}

document.addEventListener("DOMContentLoaded", init);
