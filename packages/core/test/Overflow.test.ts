import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Metric, Stream } from "effect"
import { ConnectorError, Metrics, Overflow } from "../src/index.ts"

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

const configReason = (exit: Exit.Exit<unknown, ConnectorError.ConnectorError>) => {
  assert.isTrue(Exit.isFailure(exit))
  const error = (exit as Exit.Failure<unknown, ConnectorError.ConnectorError>).cause.reasons[0]
  assert.strictEqual(error._tag, "Fail")
  const failure = (error as { error: ConnectorError.ConnectorError }).error
  assert.isTrue(ConnectorError.isConnectorError(failure))
  assert.strictEqual(failure.reason._tag, "Config")
  return failure as ConnectorError.ConnectorError & { reason: ConnectorError.Config }
}

const overflowReason = (exit: Exit.Exit<unknown, unknown>) => {
  assert.isTrue(Exit.isFailure(exit), "expected the stream to fail")
  const reason = (exit as Exit.Failure<unknown, ConnectorError.ConnectorError>).cause.reasons.find(
    (r) => r._tag === "Fail"
  ) as { error: ConnectorError.ConnectorError } | undefined
  assert.isDefined(reason)
  assert.strictEqual(reason!.error.reason._tag, "Overflow")
  return reason!.error
}

describe("Overflow.resolve", () => {
  it.effect("fills in defaults: the connector's first, then core's", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* Overflow.resolve("test", undefined), Overflow.defaultPolicy)
      assert.deepStrictEqual(yield* Overflow.resolve("test", { bufferSize: 10 }), {
        bufferSize: 10,
        strategy: "suspend",
        hardCap: 40
      })
      assert.deepStrictEqual(yield* Overflow.resolve("test", undefined, { strategy: "dropping", bufferSize: 8 }), {
        bufferSize: 8,
        strategy: "dropping",
        hardCap: 32
      })
      assert.deepStrictEqual(yield* Overflow.resolve("test", { strategy: "fail", hardCap: 5, bufferSize: 5 }), {
        bufferSize: 5,
        strategy: "fail",
        hardCap: 5
      })
    })
  )

  it.effect("an invalid option fails at once with a Config reason naming it and the value", () =>
    Effect.gen(function* () {
      for (const bufferSize of [0, -3, 1.5, Number.NaN, "10" as unknown as number]) {
        const error = configReason(yield* Effect.exit(Overflow.resolve("ws", { bufferSize })))
        assert.strictEqual(error.connector, "ws")
        assert.strictEqual(error.reason.option, "overflow.bufferSize")
        assert.deepStrictEqual(error.reason.value, bufferSize)
        assert.isFalse(error.isRetryable)
        assert.include(error.message, "overflow.bufferSize")
      }
      const strategy = configReason(
        yield* Effect.exit(Overflow.resolve("ws", { strategy: "drop-oldest" as Overflow.Strategy }))
      )
      assert.strictEqual(strategy.reason.option, "overflow.strategy")
      assert.include(strategy.message, '"drop-oldest"')
      const hardCap = configReason(yield* Effect.exit(Overflow.resolve("ws", { bufferSize: 10, hardCap: 5 })))
      assert.strictEqual(hardCap.reason.option, "overflow.hardCap")
      assert.strictEqual(hardCap.reason.value, 5)
    })
  )
})

/** A source driven by the test: pushes `n` values, one per `setImmediate`, unless paused. */
const syntheticSource = (n: number, opts: { readonly honoursPause: boolean; readonly registerFlow: boolean }) => {
  const log = { pauses: 0, resumes: 0, maxDepth: 0 }
  const make = (policy: Overflow.Policy) =>
    Overflow.stream<number>(
      (sink) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            let next = 1
            let paused = false
            let timer: NodeJS.Immediate | undefined
            const tick = () => {
              timer = undefined
              // A burst of 50 per tick, like a socket delivering several frames at once.
              for (let i = 0; i < 50 && next <= n; i++) {
                if (paused && opts.honoursPause) return
                sink.single(next++)
                log.maxDepth = Math.max(log.maxDepth, sink.depth)
              }
              if (next > n) sink.end()
              else if (!(paused && opts.honoursPause)) timer = setImmediate(tick)
            }
            if (opts.registerFlow) {
              sink.flowControl({
                pause: () => {
                  log.pauses++
                  paused = true
                },
                resume: () => {
                  log.resumes++
                  paused = false
                  if (timer === undefined) timer = setImmediate(tick)
                }
              })
            }
            timer = setImmediate(tick)
            return () => timer && clearImmediate(timer)
          }),
          (stop) => Effect.sync(stop)
        ),
      { connector: "synthetic", name: "test", policy }
    )
  return { log, make }
}

const slowly = <A, E>(stream: Stream.Stream<A, E>) =>
  stream.pipe(
    Stream.mapEffect((a) =>
      Effect.as(
        Effect.promise(() => new Promise((r) => setImmediate(r))),
        a
      )
    ),
    Stream.runCollect
  )

describe("Overflow.stream", () => {
  it.live('"suspend" pauses the source at bufferSize and resumes it when drained: lossless, bounded', () =>
    Effect.gen(function* () {
      const source = syntheticSource(2000, { honoursPause: true, registerFlow: true })
      const out = yield* slowly(source.make({ bufferSize: 64, strategy: "suspend", hardCap: 256 }))
      assert.deepStrictEqual(out, range(2000))
      assert.isAbove(source.log.pauses, 0, "a slow consumer must pause the source")
      // Every pause is followed by a resume, except one the end of the source may close for good.
      assert.isAtLeast(source.log.resumes, source.log.pauses - 1)
      assert.isAtMost(source.log.maxDepth, 64)
    })
  )

  it.live('"suspend" fails with Overflow past the hard cap when the source cannot pause', () =>
    Effect.gen(function* () {
      const source = syntheticSource(5000, { honoursPause: false, registerFlow: false })
      const seen: Array<number> = []
      const exit = yield* source.make({ bufferSize: 16, strategy: "suspend", hardCap: 100 }).pipe(
        Stream.runForEach((n) =>
          Effect.as(
            Effect.promise(() => new Promise((r) => setTimeout(r, 1))),
            seen.push(n)
          )
        ),
        Effect.exit
      )
      const error = overflowReason(exit)
      assert.strictEqual(error.connector, "synthetic")
      assert.include(error.message, "hard cap of 100")
      assert.isAtMost(source.log.maxDepth, 100)
      // What was buffered before the failure was delivered, in order.
      assert.deepStrictEqual(seen, range(seen.length))
    })
  )

  it.live('"suspend" also fails past the hard cap when the source ignores pause', () =>
    Effect.gen(function* () {
      const source = syntheticSource(5000, { honoursPause: false, registerFlow: true })
      const exit = yield* source.make({ bufferSize: 16, strategy: "suspend", hardCap: 64 }).pipe(slowly, Effect.exit)
      overflowReason(exit)
      assert.isAbove(source.log.pauses, 0)
    })
  )

  it.live(
    '"suspend" takes a batch that crosses bufferSize whole, pausing once; one that would cross the hard cap fails',
    () =>
      Effect.gen(function* () {
        let pauses = 0
        let depthAfterBatch = 0
        let accepted: boolean | undefined
        const out = yield* Overflow.stream<number>(
          (sink) =>
            Effect.sync(() => {
              sink.flowControl({ pause: () => pauses++, resume: () => {} })
              sink.array(range(6))
              // 6 + 20 crosses bufferSize (10) but not the hard cap (40): all of it, one pause.
              accepted = sink.array(range(26).slice(6))
              depthAfterBatch = sink.depth
              sink.end()
            }),
          { connector: "synthetic", policy: { bufferSize: 10, strategy: "suspend", hardCap: 40 } }
        ).pipe(Stream.runCollect)
        assert.deepStrictEqual(out, range(26))
        assert.isTrue(accepted)
        assert.strictEqual(depthAfterBatch, 26)
        assert.strictEqual(pauses, 1)

        const exit = yield* Overflow.stream<number>(
          (sink) =>
            Effect.sync(() => {
              sink.array(range(30))
              sink.array(range(41).slice(30))
            }),
          { connector: "synthetic", policy: { bufferSize: 10, strategy: "suspend", hardCap: 40 } }
        ).pipe(Stream.runCollect, Effect.exit)
        assert.include(overflowReason(exit).message, "hard cap of 40")
      })
  )

  it.live('"dropping" keeps the oldest values, counts each drop in the sink and the metric', () =>
    Effect.gen(function* () {
      let droppedSeen = 0
      const out = yield* Overflow.stream<number>(
        (sink) =>
          Effect.sync(() => {
            for (const i of range(100)) sink.single(i)
            droppedSeen = sink.dropped
            sink.end()
          }),
        { connector: "synthetic", name: "dropping", policy: { bufferSize: 10, strategy: "dropping", hardCap: 10 } }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, range(10))
      assert.strictEqual(droppedSeen, 90)
      assert.strictEqual((yield* Metric.value(Metrics.dropped("synthetic", "dropping"))).count, 90)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.live('"sliding" keeps the newest values and counts what it evicts', () =>
    Effect.gen(function* () {
      const out = yield* Overflow.stream<number>(
        (sink) =>
          Effect.sync(() => {
            sink.array(range(100))
            sink.end()
          }),
        { connector: "synthetic", name: "sliding", policy: { bufferSize: 10, strategy: "sliding", hardCap: 10 } }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, range(100).slice(90))
      assert.strictEqual((yield* Metric.value(Metrics.dropped("synthetic", "sliding"))).count, 90)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.live('"fail" delivers what fits, then fails with Overflow', () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      const exit = yield* Overflow.stream<number>(
        (sink) =>
          Effect.sync(() => {
            for (const i of range(20)) sink.single(i)
          }),
        { connector: "synthetic", policy: { bufferSize: 5, strategy: "fail", hardCap: 5 } }
      ).pipe(
        Stream.runForEach((n) => Effect.sync(() => seen.push(n))),
        Effect.exit
      )
      assert.deepStrictEqual(seen, range(5))
      const error = overflowReason(exit)
      assert.include(error.message, 'buffer of 5 full (strategy "fail")')
      assert.strictEqual((error.reason as ConnectorError.Overflow).bufferSize, 5)
    })
  )

  it.live('"suspend" over a real TCP socket: the server is backpressured, the client buffer stays bounded', () =>
    Effect.gen(function* () {
      const total = 100_000
      const line = "x".repeat(100)
      let serverBlocked = 0
      const server = yield* Effect.acquireRelease(
        Effect.callback<Net.Server>((resume) => {
          const server = Net.createServer((socket) => {
            let i = 0
            const write = () => {
              while (i < total) {
                if (!socket.write(`${line}\n`)) {
                  serverBlocked++
                  i++
                  socket.once("drain", write)
                  return
                }
                i++
              }
              socket.end()
            }
            write()
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.callback<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
      )
      const port = (server.address() as Net.AddressInfo).port
      let maxDepth = 0
      let bytes = 0
      const chunks = Overflow.stream<Buffer>(
        (sink) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              const socket = Net.connect(port, "127.0.0.1")
              sink.flowControl({ pause: () => socket.pause(), resume: () => socket.resume() })
              socket.on("data", (chunk: Buffer) => {
                sink.single(chunk)
                maxDepth = Math.max(maxDepth, sink.depth)
              })
              socket.on("end", () => sink.end())
              socket.on("error", (e) => sink.die(e))
              return socket
            }),
            (socket) => Effect.sync(() => socket.destroy())
          ),
        { connector: "tcp", policy: { bufferSize: 8, strategy: "suspend", hardCap: 64 } }
      )
      yield* chunks.pipe(
        Stream.runForEach((chunk) =>
          Effect.promise(() => new Promise((r) => setTimeout(r, 1))).pipe(
            Effect.andThen(
              Effect.sync(() => {
                bytes += chunk.length
              })
            )
          )
        )
      )
      assert.strictEqual(bytes, total * (line.length + 1), "every byte arrives")
      assert.isAbove(serverBlocked, 0, "the server's writes were backpressured")
      assert.isAtMost(maxDepth, 64)
    })
  )
})
