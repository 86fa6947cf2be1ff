/**
 * The servers of the scale suite, in a worker thread: their heap is the worker's own, so the measured process's
 * heap holds only the clients. A WebSocket server and an SSE server, both silent (idle connections).
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { parentPort } from "node:worker_threads"
import { WebSocketServer } from "ws"

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
const open = new Set<Http.ServerResponse>()
const sse = Http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" })
  response.write(": open\n\n")
  open.add(response)
  response.on("close", () => open.delete(response))
})
sse.keepAliveTimeout = 0
sse.listen(0, "127.0.0.1")
let ready = 0
const announce = () => {
  if (++ready < 2) return
  parentPort!.postMessage({
    ws: (wss.address() as Net.AddressInfo).port,
    sse: (sse.address() as Net.AddressInfo).port
  })
}
wss.on("listening", announce)
sse.on("listening", announce)
