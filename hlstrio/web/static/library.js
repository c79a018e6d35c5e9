// The library page: every item as a poster card; typing in the box filters by title.
import {
  api,
  codecName,
  containerName,
  el,
  formatTime,
  icon,
  initChrome,
  loadPoster,
  qualityName,
  withAuth,
} from "./common.js";

const grid = document.getElementById("grid");
const filter = document.getElementById("filter");
const count = document.getElementById("count");
const empty = document.getElementById("empty");
const errorBox = document.getElementById("error");

// Ignore case and accents: "elan" finds "Élan".
function searchable(text) {
  return text.normalize("NFD").replace(/\p{Diacritic}/gu, "").toLowerCase();
}

function initials(title) {
  return title
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word[0].toUpperCase())
    .join("");
}

function metaLine(item) {
  const parts = [];
  if (item.video) {
    parts.push(`${item.video.width}×${item.video.height}`);
    parts.push(codecName(item.video.codec));
  }
  if (item.audio.length) {
    const codecs = [...new Set(item.audio.map((a) => codecName(a.codec)))].join("/");
    parts.push(item.audio.length > 1 ? `${codecs} ×${item.audio.length}` : codecs);
  }
  parts.push(containerName(item));
  const line = el("div", { class: "card-meta" });
  parts.forEach((part, i) => {
    if (i) line.append(el("span", { class: "sep" }, "·"));
    line.append(part);
  });
  return line;
}

// Posters are fetched only as cards scroll into view: a big library asks for a few at a time.
const posterObserver = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      posterObserver.unobserve(entry.target);
      const img = entry.target;
      const width = window.devicePixelRatio > 1.5 ? 960 : 480;
      loadPoster(img, img.dataset.mediaId, width).catch(() => img.dispatchEvent(new Event("error")));
    }
  },
  { rootMargin: "400px" },
);

function card(item) {
  const img = el("img", { alt: "", "data-media-id": item.id, decoding: "async" });
  const placeholder = el("div", { class: "placeholder" }, initials(item.title));
  img.addEventListener("load", () => placeholder.remove(), { once: true });
  img.addEventListener("error", () => img.remove(), { once: true });
  posterObserver.observe(img);
  const play = el("div", { class: "play-hint" }, icon("play"));
  return el(
    "a",
    { class: "card", href: `/play/${encodeURIComponent(item.id)}`, "data-media-id": item.id, title: item.path },
    el(
      "div",
      { class: "poster" },
      placeholder,
      img,
      play,
      item.video ? el("span", { class: "corner quality" }, qualityName(item.video.height)) : null,
      el("span", { class: "corner duration" }, formatTime(item.duration)),
    ),
    el("div", { class: "card-body" }, el("h3", { class: "card-title" }, item.title), metaLine(item)),
  );
}

function render(items) {
  const cards = items.map((item) => ({ item, key: searchable(`${item.title} ${item.path}`), node: card(item) }));
  grid.replaceChildren(...cards.map((c) => c.node));

  function apply() {
    const query = searchable(filter.value.trim());
    let shown = 0;
    for (const c of cards) {
      const match = !query || c.key.includes(query);
      c.node.hidden = !match;
      if (match) shown += 1;
    }
    count.textContent = query ? `${shown} of ${items.length}` : `${items.length}`;
    empty.hidden = shown > 0;
    if (!items.length) {
      empty.replaceChildren(el("strong", {}, "The library is empty"), "No playable video files were found under the configured media folders.");
    } else if (!shown) {
      empty.replaceChildren(el("strong", {}, "No matches"), `Nothing in the library matches “${filter.value.trim()}”.`);
    }
  }
  filter.addEventListener("input", apply);
  apply();
}

async function main() {
  initChrome("library");
  try {
    const { items } = await withAuth(() => api("GET", "/api/v1/media"));
    render(items);
  } catch (err) {
    errorBox.textContent = `Could not load the library: ${err.message}`;
    errorBox.hidden = false;
  }
  document.body.dataset.ready = "true";
}

main();
