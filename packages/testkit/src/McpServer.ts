/**
 * A scripted MCP endpoint over Streamable HTTP (2025-03-26): `POST` JSON-RPC; `initialize` answers JSON with an
 * `Mcp-Session-Id` header, every later request must carry it (else 400); `tools/call` answers a
 * `text/event-stream` of progress notifications (event ids `1…n`), then the response. The stream can drop after
 * `dropAfter` events (the first time); a `GET` with the session and `Last-Event-ID` resumes it, as the spec's
 * resumability says.
 *
 * @since 0.2.0
 */
import * as Http from "node:http"
import { Effect, type Scope } from "effect"
import { listen } from "./internal/listen.ts"

/**
 * @since 0.2.0
 * @category models
 */
export interface Request {
  readonly method: string
  readonly sessionId: string | undefined
  readonly lastEventId: string | undefined
  readonly body: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface McpServer {
  readonly url: string
  readonly requests: () => ReadonlyArray<Request>
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: {
  /** Progress notifications before the response. */
  readonly steps: number
  /** The first `tools/call` stream drops after this many events. */
  readonly dropAfter?: number | undefined
}): Effect.Effect<McpServer, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const requests: Array<Request> = []
    const sessionId = `session-${Math.random().toString(36).slice(2)}`
    /** The events of the last tools/call stream, for a resume. */
    let events: Array<string> = []
    let dropped = false
    const json = (response: Http.ServerResponse, status: number, value: unknown, headers = {}) =>
      response.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(value))
    const stream = (response: Http.ServerResponse, from: number) => {
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" })
      for (let i = from; i < events.length; i++) {
        if (!dropped && options.dropAfter !== undefined && i === options.dropAfter) {
          dropped = true
          // The connection drops after what was sent has arrived.
          setTimeout(() => response.socket?.destroy(), 50)
          return
        }
        response.write(`id: ${i + 1}\ndata: ${events[i]}\n\n`)
      }
      response.end()
    }
    const server = Http.createServer((request, response) => {
      let text = ""
      request.setEncoding("utf8")
      request.on("data", (chunk: string) => (text += chunk))
      request.on("end", () => {
        const header = (name: string) => {
          const value = request.headers[name]
          return typeof value === "string" ? value : undefined
        }
        requests.push({
          method: request.method ?? "",
          sessionId: header("mcp-session-id"),
          lastEventId: header("last-event-id"),
          body: text
        })
        if (request.method === "GET") {
          const last = header("last-event-id")
          if (header("mcp-session-id") !== sessionId) return json(response, 404, { error: "unknown session" })
          if (last === undefined) return json(response, 405, { error: "no standalone stream here" })
          return stream(response, Number(last))
        }
        let message: { readonly id?: unknown; readonly method?: unknown }
        try {
          message = JSON.parse(text)
        } catch {
          return json(response, 400, { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" } })
        }
        if (message.method === "initialize") {
          return json(
            response,
            200,
            { jsonrpc: "2.0", id: message.id, result: { protocolVersion: "2025-03-26", capabilities: {} } },
            { "mcp-session-id": sessionId }
          )
        }
        if (header("mcp-session-id") !== sessionId) {
          return json(response, 400, {
            jsonrpc: "2.0",
            error: { code: -32000, message: "Bad Request: No valid session ID provided" }
          })
        }
        if (message.method !== "tools/call") {
          return json(response, 200, { jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Not found" } })
        }
        events = Array.from({ length: options.steps }, (_, i) =>
          JSON.stringify({
            jsonrpc: "2.0",
            method: "notifications/progress",
            params: { progress: i + 1, total: options.steps }
          })
        )
        events.push(
          JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { content: [{ type: "text", text: "done" }] } })
        )
        stream(response, 0)
      })
    })
    const port = yield* listen(server)
    return { url: `http://127.0.0.1:${port}/mcp`, requests: () => requests }
  })
