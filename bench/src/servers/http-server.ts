/**
 * The NDJSON / SSE source of the benchmark, in a worker thread: every request gets `count` pre-built lines of about
 * `size` bytes, written as fast as the client reads, then the end of the body. With `perSecond` (SSE only), it gets
 * `count` events whose data is the time each was written (epoch ms), at that rate, instead.
 */
import * as Http from "node:http"
import { parentPort } from "node:worker_threads"

const port = parentPort!
let count = 0
let size = 100
let format: "ndjson" | "sse" = "ndjson"
let perSecond: number | undefined

const body = (n: number) => {
  const padding = "x".repeat(Math.max(0, size - 30))
  const frame =
    format === "sse"
      ? (i: number) => `id: ${i}\ndata: ${JSON.stringify({ i, padding })}\n\n`
      : (i: number) => `${JSON.stringify({ i, padding })}\n`
  return Buffer.from(Array.from({ length: n }, (_, i) => frame(i)).join(""))
}

/** Timestamped events at `perSecond`, those due at each millisecond tick together. */
const atRate = (response: Http.ServerResponse, rate: number) => {
  response.flushHeaders()
  const perMs = rate / 1000
  const start = performance.now()
  let sent = 0
  const tick = () => {
    if (response.destroyed) return
    const due = Math.min(count, Math.floor((performance.now() - start) * perMs) + 1)
    for (; sent < due; sent++) response.write(`data: ${performance.timeOrigin + performance.now()}\n\n`)
    if (sent < count) setTimeout(tick, 1)
    else response.end()
  }
  tick()
}

const server = Http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": format === "sse" ? "text/event-stream" : "application/x-ndjson" })
  if (perSecond !== undefined) return atRate(response, perSecond)
  const batch = 2048
  const full = body(batch)
  let sent = 0
  const write = () => {
    while (sent < count) {
      const n = Math.min(batch, count - sent)
      sent += n
      if (!response.write(n === batch ? full : body(n))) return void response.once("drain", write)
    }
    response.end()
  }
  write()
})
server.listen(0, "127.0.0.1", () =>
  port.postMessage({ type: "listening", port: (server.address() as { port: number }).port })
)
port.on(
  "message",
  (
    command:
      | {
          readonly cmd: "set"
          readonly count: number
          readonly size: number
          readonly format?: "ndjson" | "sse"
          readonly perSecond?: number
        }
      | { readonly cmd: "close" }
  ) => {
    if (command.cmd === "set") {
      count = command.count
      size = command.size
      format = command.format ?? "ndjson"
      perSecond = command.perSecond
      port.postMessage({ type: "done" })
    } else {
      server.closeAllConnections()
      server.close(() => port.postMessage({ type: "closed" }))
    }
  }
)
