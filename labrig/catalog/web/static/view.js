// labrig web view: draws the JSON the server builds (Plotly figures) and, while a run
// is being written, asks again every data-poll-ms milliseconds.
"use strict";

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function plotInto(container, id, figure) {
  let div = document.getElementById("plot-" + id);
  if (!div) {
    div = document.createElement("div");
    div.id = "plot-" + id;
    div.className = "plot";
    container.appendChild(div);
  }
  return Plotly.react(div, figure.data, figure.layout, { responsive: true, displaylogo: false });
}

function showProblem(container, error) {
  let p = container.querySelector(".problem");
  if (!p) {
    p = document.createElement("p");
    p.className = "problem";
    container.prepend(p);
  }
  p.textContent = String(error.message || error);
}

async function runPage(container) {
  const poll = Number(container.dataset.pollMs);
  let running = true;
  try {
    const data = await getJSON(container.dataset.api);
    for (const plot of data.plots) await plotInto(container, plot.id, plot.figure);
    document.getElementById("status").textContent = data.status;
    container.dataset.status = data.status;
    container.dataset.updates = String(Number(container.dataset.updates || 0) + 1);
    running = data.status === "running";
  } catch (error) {
    showProblem(container, error);
  }
  if (running) setTimeout(() => runPage(container), poll);
}

function channelTile(ch) {
  const tile = document.createElement("div");
  tile.className = "channel";
  tile.dataset.channel = ch.channel;
  const rel = ch.relative === null ? "—" : ch.relative.toFixed(3);
  const hours = ch.hours === null ? "—" : ch.hours.toPrecision(3) + " h";
  const t50 = ch.t50_h === null ? "" : " · T50 " + ch.t50_h.toPrecision(3) + " h";
  tile.innerHTML = '<div class="name"></div><div class="value"></div><div class="time"></div>';
  tile.querySelector(".name").textContent = ch.channel.replace("channel_", "ch ");
  tile.querySelector(".value").textContent = "L/L0 " + rel;
  tile.querySelector(".time").textContent = hours + t50;
  return tile;
}

async function rackPage(container) {
  const poll = Number(container.dataset.pollMs);
  try {
    const data = await getJSON(container.dataset.api);
    const keep = new Set(data.runs.map((r) => r.key));
    for (const box of container.querySelectorAll(".rack-run")) {
      if (!keep.has(box.dataset.key)) box.remove();
    }
    if (!data.runs.length && !container.querySelector(".idle")) {
      const p = document.createElement("p");
      p.className = "idle";
      p.textContent = "no lifetime run is running";
      container.appendChild(p);
    } else if (data.runs.length) {
      container.querySelector(".idle")?.remove();
    }
    data.runs.forEach((run) => {
      let box = container.querySelector(`.rack-run[data-key="${CSS.escape(run.key)}"]`);
      if (!box) {
        box = document.createElement("section");
        box.className = "rack-run";
        box.dataset.key = run.key;
        box.innerHTML = '<h2><a></a> <span class="sample"></span></h2><div class="channels"></div>';
        container.appendChild(box);
      }
      box.querySelector("a").href = run.url;
      box.querySelector("a").textContent = run.key;
      box.querySelector(".sample").textContent = run.sample;
      box.querySelector(".channels").replaceChildren(...run.channels.map(channelTile));
      plotInto(box, "rack-" + run.key.replace(/[^A-Za-z0-9_-]/g, "_"), run.figure);
    });
    container.dataset.updates = String(Number(container.dataset.updates || 0) + 1);
  } catch (error) {
    showProblem(container, error);
  }
  setTimeout(() => rackPage(container), poll);
}

document.addEventListener("DOMContentLoaded", () => {
  const plots = document.getElementById("plots");
  if (plots) runPage(plots);
  const rack = document.getElementById("rack");
  if (rack) rackPage(rack);
});
