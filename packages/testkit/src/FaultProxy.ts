/**
 * A TCP proxy on loopback between a client and a real server, that injects the faults a network produces:
 * connection resets, black holes (half-open connections), latency, refused connections.
 *
 * @since 0.1.0
 */
import * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Client connections accepted since the proxy started. */
  readonly accepted: number
  /** Client connections open now. */
  readonly open: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FaultProxy {
  readonly host: string
  readonly port: number
  /** `host:port` of the proxy, to put in a URL in place of the real server's. */
  readonly address: string
  /** Destroys every live connection with a TCP RST, both sides. New connections are accepted. */
  readonly reset: Effect.Effect<void>
  /** Keeps every socket open and forwards nothing, either way, until `restore`: the half-open case. */
  readonly blackhole: Effect.Effect<void>
  /** Delays every chunk by `ms`, both ways, order kept. */
  readonly latency: (ms: number) => Effect.Effect<void>
  /** Stops listening: new connections are refused (ECONNREFUSED). Live ones stay. */
  readonly refuse: Effect.Effect<void>
  /** Back to normal: listening, forwarding, no latency. */
  readonly restore: Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
  /** Waits (polling) until `predicate` holds for the stats; fails after `timeoutMs`. */
  readonly waitFor: (predicate: (stats: Stats) => boolean, timeoutMs?: number) => Effect.Effect<Stats, Error>
}

/**
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly target: { readonly host?: string | undefined; readonly port: number }
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
}

interface Pair {
  readonly client: Net.Socket
  upstream: Net.Socket
}

/**
 * Starts a proxy in the current Scope; closing the Scope closes every socket and the listener.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<FaultProxy, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const targetHost = options.target.host ?? "127.0.0.1"
    const pairs = new Set<Pair>()
    let accepted = 0
    let blackholed = false
    let delayMs = 0
    let server: Net.Server | undefined

    const forward = (from: Net.Socket, to: () => Net.Socket) => {
      from.on("data", (chunk: Buffer) => {
        if (blackholed) return
        const write = () => {
          const target = to()
          if (target.destroyed) return
          // Real backpressure through the proxy: a slow reader on one side slows the writer on the other.
          if (!target.write(chunk)) {
            from.pause()
            target.once("drain", () => from.resume())
          }
        }
        if (delayMs > 0) setTimeout(write, delayMs)
        else write()
      })
    }

    const onConnection = (client: Net.Socket) => {
      accepted++
      const upstream = Net.connect({ host: targetHost, port: options.target.port })
      const pair: Pair = { client, upstream }
      pairs.add(pair)
      const closeBoth = () => {
        if (!pairs.delete(pair)) return
        client.destroy()
        upstream.destroy()
      }
      forward(client, () => pair.upstream)
      forward(upstream, () => client)
      for (const socket of [client, upstream]) {
        socket.on("error", closeBoth)
        socket.on("close", closeBoth)
        socket.on("end", () => {
          // Half-close travels through, unless the proxy is a black hole.
          if (blackholed) return
          const other = socket === client ? upstream : client
          if (!other.destroyed) other.end()
        })
      }
    }

    const listen = (port: number) =>
      Effect.callback<Net.Server, Error>((resume) => {
        const next = Net.createServer(onConnection)
        next.once("error", (error) => resume(Effect.fail(error)))
        next.listen(port, host, () => resume(Effect.succeed(next)))
      })

    // The listener stops at once; close()'s callback would wait for connections, which are ours to end.
    const closeServer = (s: Net.Server | undefined) => Effect.sync(() => s?.close())

    server = yield* listen(0)
    const port = (server.address() as Net.AddressInfo).port
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        for (const pair of pairs) {
          pair.client.destroy()
          pair.upstream.destroy()
        }
        pairs.clear()
        const s = server
        server = undefined
        return closeServer(s)
      })
    )

    const stats = Effect.sync((): Stats => ({ accepted, open: pairs.size }))

    return {
      host,
      port,
      address: `${host}:${port}`,
      reset: Effect.sync(() => {
        for (const pair of [...pairs]) {
          pairs.delete(pair)
          pair.client.resetAndDestroy()
          pair.upstream.resetAndDestroy()
        }
      }),
      blackhole: Effect.sync(() => {
        blackholed = true
      }),
      latency: (ms) =>
        Effect.sync(() => {
          delayMs = ms
        }),
      refuse: Effect.suspend(() => {
        const s = server
        server = undefined
        return closeServer(s)
      }),
      restore: Effect.gen(function* () {
        blackholed = false
        delayMs = 0
        if (server === undefined) server = yield* Effect.orDie(listen(port))
      }),
      stats,
      waitFor: (predicate, timeoutMs = 5000) =>
        Effect.gen(function* () {
          const deadline = Date.now() + timeoutMs
          for (;;) {
            const now = yield* stats
            if (predicate(now)) return now
            if (Date.now() > deadline) {
              return yield* Effect.fail(
                new Error(`FaultProxy: condition not met within ${timeoutMs} ms: ${JSON.stringify(now)}`)
              )
            }
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
          }
        })
    }
  })
