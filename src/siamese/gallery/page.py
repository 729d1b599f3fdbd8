"""The service's web page: drop (or choose) an image, see its nearest gallery images with their
distances and the verdict at τ. Plain HTML and JavaScript, no external resources."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>siamese search</title>
<style>
body { font-family: sans-serif; margin: 2em; }
#drop { border: 2px dashed #888; padding: 2em; text-align: center; max-width: 40em; }
#drop.over { background: #eef; }
#results { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 1em; }
figure { margin: 0; width: 140px; font-size: 12px; overflow-wrap: anywhere; }
figure img { width: 140px; height: 140px; object-fit: contain; background: #f4f4f4; }
.same { color: #060; } .different { color: #900; } #error { color: #900; }
</style></head>
<body>
<h1>siamese search</h1>
<p id="about"></p>
<div id="drop">Drop an image here, or <input type="file" id="file" accept="image/*">
  <label>k <input type="number" id="k" value="5" min="1" max="1000" style="width: 4em"></label>
</div>
<p id="error"></p>
<div id="query"></div>
<div id="results"></div>
<script>
const about = document.getElementById("about"), error = document.getElementById("error");
fetch("/health").then(r => r.json()).then(h => {
  about.textContent = `${h.images} gallery images, ${h.search}, τ = ${h.threshold}`;
});
function figure(src, lines, cls) {
  const f = document.createElement("figure");
  if (cls) f.className = cls;
  const img = document.createElement("img");
  img.src = src;
  const caption = document.createElement("figcaption");
  caption.textContent = lines.join(" · ");
  f.append(img, caption);
  return f;
}
async function search(file) {
  error.textContent = "";
  const results = document.getElementById("results");
  results.replaceChildren();
  document.getElementById("query").replaceChildren(
    figure(URL.createObjectURL(file), ["query: " + file.name]));
  const form = new FormData();
  form.append("file", file);
  const k = document.getElementById("k").value;
  const response = await fetch(`/search?k=${encodeURIComponent(k)}`, {method: "POST", body: form});
  const body = await response.json();
  if (!response.ok) {
    error.textContent = `${response.status}: ${JSON.stringify(body.detail)}`;
    return;
  }
  for (const r of body.results) {
    const verdict = r.same ? "same" : "different";
    const f = figure(r.url, [`${r.rank}. ${r.file}`, `d ${r.distance.toFixed(4)}`, verdict],
                     "match " + verdict);
    results.append(f);
  }
}
const input = document.getElementById("file"), drop = document.getElementById("drop");
input.addEventListener("change", () => input.files.length && search(input.files[0]));
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) search(e.dataTransfer.files[0]);
});
</script>
</body></html>
"""
