/**
 * The tap's live dashboard (`--ui [HOST:]PORT`): one page, served by the tap with Effect's HTTP server, updated
 * twice a second over Server-Sent Events. Each source's state, rate (a sparkline of the last minute), totals,
 * drops, reconnects, the timeline of its `Disconnected` / `Gap` events, and the latest messages of the selected
 * one. No build step: the page is plain HTML and a script.
 */
import * as Http from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpServer from "effect/http/HttpServer"
import type { ServeError } from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/** What the page shows of one source. */
export interface SourceView {
  readonly label: string
  readonly connector: string
  readonly state: string
  readonly total: number
  readonly dropped: number
  readonly reconnects: number
  /** Messages per second, one value a second, the last minute. */
  readonly rates: ReadonlyArray<number>
  /** `Disconnected` and `Gap` events, newest last. */
  readonly timeline: ReadonlyArray<Record<string, unknown>>
  /** The latest message records, newest last. */
  readonly recent: ReadonlyArray<Record<string, unknown>>
}

/** Parses `--ui`: `7070`, `:7070` or `host:7070`. */
export const parseAddress = (value: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(?:(.*):)?(\d{1,5})$/.exec(value)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port > 65535) return undefined
  return { host: match[1] === undefined || match[1] === "" ? "127.0.0.1" : match[1], port }
}

const encoder = new TextEncoder()

/** Serves the page and its event stream in the current Scope; returns the page's URL. */
export const serve = (
  address: { readonly host: string; readonly port: number },
  snapshot: Effect.Effect<ReadonlyArray<SourceView>>
): Effect.Effect<string, ServeError, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      NodeHttpServer.layer(() => Http.createServer(), { port: address.port, host: address.host })
    )
    const server = Context.get(context, HttpServer.HttpServer)
    const events = Stream.fromSchedule(Schedule.spaced("500 millis")).pipe(
      Stream.mapEffect(() => snapshot),
      Stream.map((sources) => encoder.encode(`data: ${JSON.stringify({ at: Date.now(), sources })}\n\n`))
    )
    const app = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, "http://tap").pathname
      if (path === "/") return HttpServerResponse.text(page, { contentType: "text/html; charset=utf-8" })
      if (path === "/events") {
        return HttpServerResponse.stream(events, {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-store" }
        })
      }
      return HttpServerResponse.text("not found", { status: 404 })
    })
    yield* HttpServer.serveEffect()(app).pipe(Effect.provide(context))
    const bound = server.address
    const port = bound._tag === "UnixPathAddress" ? address.port : bound.port
    return `http://${address.host.includes(":") ? `[${address.host}]` : address.host}:${port}/`
  })

/** The page: a table of sources, a timeline and the latest messages of the one selected. */
const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>streamemit tap</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #fafbfc; }
  h1 { font-size: 1.2rem; margin: 0 0 1rem; }
  h1 small { color: #7a8294; font-weight: normal; }
  table { border-collapse: collapse; width: 100%; background: white; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e6e8ee; white-space: nowrap; }
  td.label { max-width: 28rem; overflow: hidden; text-overflow: ellipsis; }
  tr.source { cursor: pointer; }
  tr.selected { background: #eef3ff; }
  .state-connected { color: #13803a; } .state-connecting { color: #a86b00; }
  .state-disconnected, .state-closed { color: #b3261e; }
  .num { text-align: right; font-variant-numeric: tabular-nums; }
  svg { vertical-align: middle; }
  section { margin-top: 1.2rem; }
  h2 { font-size: 1rem; margin: 0 0 .4rem; }
  ol { margin: 0; padding-left: 1.2rem; }
  li.gap-possible-loss { color: #b3261e; } li.gap-resumed { color: #13803a; } li.disconnected { color: #a86b00; }
  pre { background: white; border: 1px solid #e6e8ee; padding: .6rem; overflow: auto; max-height: 22rem; margin: 0; }
</style>
</head>
<body>
<h1>streamemit tap <small id="status">connecting…</small></h1>
<table>
  <thead><tr><th>source</th><th>connector</th><th>state</th><th class="num">total</th><th class="num">rate/s</th><th>last minute</th><th class="num">dropped</th><th class="num">reconnects</th></tr></thead>
  <tbody id="sources"></tbody>
</table>
<section><h2>Timeline <small id="timeline-of"></small></h2><ol id="timeline"></ol></section>
<section><h2>Latest messages <small id="recent-of"></small></h2><pre id="recent"></pre></section>
<script>
  let selected = 0
  let last = { sources: [] }
  const text = (value) => String(value).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c])
  const sparkline = (recent) => {
    // Always a minute wide: the seconds before the tap started are zeros.
    const rates = Array(Math.max(0, 60 - recent.length)).fill(0).concat(recent)
    const max = Math.max(1, ...rates)
    const points = rates.map((r, i) => (i * 120 / 59).toFixed(1) + "," + (20 - (r / max) * 18).toFixed(1)).join(" ")
    return '<svg width="120" height="22" viewBox="0 0 120 22"><polyline fill="none" stroke="#3b6fe0" stroke-width="1.5" points="' + points + '"/></svg>'
  }
  const render = () => {
    const rows = last.sources.map((s, i) =>
      '<tr class="source' + (i === selected ? " selected" : "") + '" data-index="' + i + '">' +
      '<td class="label" title="' + text(s.label) + '">' + text(s.label) + "</td><td>" + text(s.connector) +
      '</td><td class="state-' + text(s.state) + '">' + text(s.state) + '</td><td class="num">' + s.total +
      '</td><td class="num">' + (s.rates.at(-1) ?? 0) + "</td><td>" + sparkline(s.rates) +
      '</td><td class="num">' + s.dropped + '</td><td class="num">' + s.reconnects + "</td></tr>")
    document.getElementById("sources").innerHTML = rows.join("")
    const source = last.sources[selected]
    if (source === undefined) return
    document.getElementById("timeline-of").textContent = "of " + source.label
    document.getElementById("recent-of").textContent = "of " + source.label
    document.getElementById("timeline").innerHTML = source.timeline.map((e) =>
      e.event === "gap"
        ? '<li class="gap gap-' + text(e.delivery) + '">' + text(e.at) + " gap: " + text(e.delivery) + ", down " + e.downtimeMillis + " ms" + (e.lost === undefined ? "" : ", " + e.lost + " lost") + "</li>"
        : '<li class="disconnected">' + text(e.at) + " disconnected: " + text(e.error) + "</li>").join("") || "<li>nothing yet</li>"
    document.getElementById("recent").textContent = source.recent.map((r) => JSON.stringify(r)).join("\\n")
  }
  document.getElementById("sources").addEventListener("click", (event) => {
    const row = event.target.closest("tr.source")
    if (row !== null) { selected = Number(row.dataset.index); render() }
  })
  const events = new EventSource("/events")
  events.onopen = () => { document.getElementById("status").textContent = "live" }
  events.onerror = () => { document.getElementById("status").textContent = "the tap is gone" }
  events.onmessage = (message) => { last = JSON.parse(message.data); render() }
</script>
</body>
</html>
`
