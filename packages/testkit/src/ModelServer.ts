/**
 * A scripted endpoint that streams an answer the way model APIs do: `POST` a JSON body (`{ "prompt": … }`), get a
 * `text/event-stream` of `data: {"token": …}` events with ids `1…n`, then `data: [DONE]`. It can drop the
 * connection mid-answer (`drops`: after how many events each request is cut), resumes after `Last-Event-ID`, and
 * answers a body without `prompt` with `400` and a JSON error, as a model API does.
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
  readonly body: string
  readonly lastEventId: string | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ModelServer {
  readonly url: string
  /** Every request, in order. */
  readonly requests: () => ReadonlyArray<Request>
}

/**
 * @since 0.2.0
 * @category options
 */
export interface Options {
  /** The answer, one event per token. */
  readonly tokens: ReadonlyArray<string>
  /** Request `i` (0-based) is cut after `drops[i]` events of its own; later requests run to the end. */
  readonly drops?: ReadonlyArray<number> | undefined
  /** End the answer with `data: [DONE]` (the default) or just close the response. */
  readonly done?: boolean | undefined
}

/**
 * Starts the server in the current Scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<ModelServer, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const requests: Array<Request> = []
    const server = Http.createServer((request, response) => {
      let text = ""
      request.setEncoding("utf8")
      request.on("data", (chunk: string) => (text += chunk))
      request.on("end", () => {
        const header = request.headers["last-event-id"]
        const lastEventId = typeof header === "string" ? header : undefined
        const index = requests.length
        requests.push({ method: request.method ?? "", body: text, lastEventId })
        if (request.method !== "POST") {
          response.writeHead(405, { "content-type": "application/json" }).end('{"error":{"message":"POST only"}}')
          return
        }
        let prompt: unknown
        try {
          prompt = (JSON.parse(text) as { prompt?: unknown }).prompt
        } catch {
          prompt = undefined
        }
        if (typeof prompt !== "string") {
          response
            .writeHead(400, { "content-type": "application/json" })
            .end('{"error":{"type":"invalid_request_error","message":"prompt is required"}}')
          return
        }
        response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" })
        const from = lastEventId === undefined ? 0 : Number(lastEventId)
        const cut = options.drops?.[index]
        let sent = 0
        for (let i = from; i < options.tokens.length; i++) {
          if (cut !== undefined && sent === cut) {
            // Mid-answer, the connection drops (a proxy timeout, a deploy): after what was sent has arrived (a
            // reset at once would take the unread bytes with it).
            setTimeout(() => response.socket?.destroy(), 50)
            return
          }
          response.write(`id: ${i + 1}\ndata: ${JSON.stringify({ token: options.tokens[i] })}\n\n`)
          sent++
        }
        if (options.done !== false) response.write("data: [DONE]\n\n")
        response.end()
      })
    })
    const port = yield* listen(server)
    return { url: `http://127.0.0.1:${port}/v1/answer`, requests: () => requests }
  })
