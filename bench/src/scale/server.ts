/**
 * The servers of the scale suite, in a process of their own: their heap and their file descriptors are not the
 * measured process's (10,000 connections on loopback are 20,000 sockets, above one process's limit here). A
 * WebSocket server and an SSE server, both silent (idle connections). Prints their ports as JSON when listening.
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { WebSocketServer } from "ws"

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, backlog: 4096 })
const open = new Set<Http.ServerResponse>()
const sse = Http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" })
  response.write(": open\n\n")
  open.add(response)
  response.on("close", () => open.delete(response))
})
sse.keepAliveTimeout = 0
sse.listen({ port: 0, host: "127.0.0.1", backlog: 4096 })
let ready = 0
const announce = () => {
  if (++ready < 2) return
  process.stdout.write(
    `${JSON.stringify({ ws: (wss.address() as Net.AddressInfo).port, sse: (sse.address() as Net.AddressInfo).port })}\n`
  )
}
wss.on("listening", announce)
sse.on("listening", announce)
