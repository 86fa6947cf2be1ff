import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, Metric, Option, Ref, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Metrics, StreamEmit } from "../src/index.ts"

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

/** The three lossless constructors, each emitting through the same callback. */
const lossless = {
  async: <A, E = never>(f: (emit: StreamEmit.Emit<never, E, A, void>) => void, size?: StreamEmit.BufferSize) =>
    StreamEmit.async<A, E>((emit) => {
      f(emit)
    }, size),
  asyncEffect: <A, E = never>(f: (emit: StreamEmit.Emit<never, E, A, void>) => void, size?: StreamEmit.BufferSize) =>
    StreamEmit.asyncEffect<A, E>((emit) => Effect.sync(() => f(emit)), size),
  asyncScoped: <A, E = never>(f: (emit: StreamEmit.Emit<never, E, A, void>) => void, size?: StreamEmit.BufferSize) =>
    StreamEmit.asyncScoped<A, E>((emit) => Effect.sync(() => f(emit)), size)
}

/** An `asyncPush` stream whose emitter a test drives from outside; `registered` waits until `register` has run. */
const capturedPush = () =>
  Effect.map(Deferred.make<StreamEmit.EmitOpsPush<never, number>>(), (registered) => ({
    stream: StreamEmit.asyncPush<number>((emit) => Deferred.succeed(registered, emit)),
    registered: Deferred.await(registered)
  }))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): Cause.Cause<E> => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  return (exit as Exit.Failure<A, E>).cause
}

describe("StreamEmit lossless constructors", () => {
  for (const [name, make] of Object.entries(lossless)) {
    describe(name, () => {
      it.effect("10 synchronous emits into a buffer of 2 deliver all 10, in order", () =>
        Effect.gen(function* () {
          const stream = make<number>((emit) => {
            for (const i of range(10)) emit.single(i)
            emit.end()
          }, 2)
          const batches = yield* Stream.runCollect(Stream.chunks(stream))
          assert.deepStrictEqual(batches.flat(), range(10))
          // Never more than the buffer's 2 values in one pull: the rest waited instead of growing the buffer.
          for (const batch of batches) assert.isAtMost(batch.length, 2)
        })
      )

      it.effect("an emit's Promise stays pending while the buffer is full", () =>
        Effect.gen(function* () {
          const settled: Array<number> = []
          const stream = make<number>((emit) => {
            for (const i of range(6)) emit.single(i).then(() => settled.push(i))
          }, 2)
          const pull = yield* Stream.toPull(stream)
          assert.deepStrictEqual(yield* pull, [1, 2])
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
          // Taking [1, 2] made room for 3 and 4; 5 and 6 still wait for room.
          assert.deepStrictEqual(settled, [1, 2, 3, 4])
          assert.deepStrictEqual(yield* pull, [3, 4])
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
          assert.deepStrictEqual(settled, [1, 2, 3, 4, 5, 6])
          assert.deepStrictEqual(yield* pull, [5, 6])
        }).pipe(Effect.scoped)
      )

      it.effect("values emitted before end/fail come first; emits after the end are ignored", () =>
        Effect.gen(function* () {
          const ended = yield* Stream.runCollect(
            make<number>((emit) => {
              emit.chunk(Chunk.make(1, 2, 3))
              emit.end()
              emit.single(4)
            }, 2)
          )
          assert.deepStrictEqual(ended, [1, 2, 3])

          const seen: Array<number> = []
          const exit = yield* make<number, string>((emit) => {
            emit.chunk(Chunk.make(1, 2, 3))
            emit.fail("boom")
            emit.single(4)
          }, 2).pipe(
            Stream.runForEach((n) => Effect.sync(() => seen.push(n))),
            Effect.exit
          )
          assert.deepStrictEqual(seen, [1, 2, 3])
          assert.deepStrictEqual(exit, Exit.fail("boom"))
        })
      )
    })
  }
})

describe("StreamEmit.async", () => {
  it.effect("the cleanup register returns runs once, at the end — not at once", () =>
    Effect.gen(function* () {
      let cleanups = 0
      const latch = yield* Deferred.make<void>()
      let emitRef: StreamEmit.Emit<never, never, number, void> | undefined
      const stream = StreamEmit.async<number>((emit) => {
        emitRef = emit
        emit.single(1)
        return Effect.sync(() => {
          cleanups++
        })
      })
      const fiber = yield* stream.pipe(
        Stream.tap(() => Deferred.succeed(latch, undefined)),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(latch)
      assert.strictEqual(cleanups, 0, "cleanup must not run while the stream is live")
      emitRef!.single(2)
      emitRef!.end()
      assert.deepStrictEqual(yield* Fiber.join(fiber), [1, 2])
      assert.strictEqual(cleanups, 1)
    })
  )

  it.effect("the cleanup runs once when the stream fails", () =>
    Effect.gen(function* () {
      let cleanups = 0
      const exit = yield* StreamEmit.async<number, string>((emit) => {
        emit.single(1)
        emit.fail("nope")
        return Effect.sync(() => {
          cleanups++
        })
      }).pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(exit, Exit.fail("nope"))
      assert.strictEqual(cleanups, 1)
    })
  )

  it.effect("the cleanup runs once when the consumer stops early or is interrupted", () =>
    Effect.gen(function* () {
      let cleanups = 0
      const forever = StreamEmit.async<number>((emit) => {
        emit.chunk(Chunk.make(1, 2, 3))
        return Effect.sync(() => {
          cleanups++
        })
      })
      assert.deepStrictEqual(yield* Stream.runCollect(Stream.take(forever, 2)), [1, 2])
      assert.strictEqual(cleanups, 1)

      const fiber = yield* Effect.forkChild(Stream.runDrain(forever), { startImmediately: true })
      yield* Effect.yieldNow
      assert.strictEqual(cleanups, 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(cleanups, 2)
    })
  )

  for (const [name, make] of Object.entries(lossless)) {
    it.live(`${name}: emits waiting for room settle when the consumer stops early or is interrupted`, () =>
      Effect.gen(function* () {
        // A producer that awaits every emit, as the guide's backpressure examples do; the buffer holds 2.
        const run = (outcome: { settled: number; finished: boolean }) =>
          make<number>((emit) => {
            void (async () => {
              for (let i = 0; i < 100; i++) {
                await emit.single(i)
                outcome.settled++
              }
              outcome.finished = true
            })()
          }, 2)
        const early = { settled: 0, finished: false }
        assert.deepStrictEqual(yield* Stream.runCollect(Stream.take(run(early), 3)), [0, 1, 2])
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
        assert.isTrue(early.finished, "every awaited emit settled after take(3) ended the stream")

        const interrupted = { settled: 0, finished: false }
        const fiber = yield* Effect.forkChild(
          Stream.runForEach(run(interrupted), () => Effect.never),
          { startImmediately: true }
        )
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
        assert.isFalse(interrupted.finished, "the consumer is stuck: the producer waits for room")
        yield* Fiber.interrupt(fiber)
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
        assert.isTrue(interrupted.finished, "every awaited emit settled after the interrupt")
      })
    )
  }

  it.effect("a throw inside register becomes a defect of the stream", () =>
    Effect.gen(function* () {
      const exit = yield* StreamEmit.async<number>(() => {
        throw new Error("register broke")
      }).pipe(Stream.runCollect, Effect.exit)
      const cause = failureOf(exit)
      assert.isTrue(Cause.hasDies(cause))
      assert.strictEqual((Cause.squash(cause) as Error).message, "register broke")
    })
  )

  it.effect("the callable emit: a chunk, Option.none ends, Option.some fails", () =>
    Effect.gen(function* () {
      const ended = yield* StreamEmit.async<number, string>((emit) => {
        emit(Effect.succeed(Chunk.make(1, 2)))
        emit(Effect.fail(Option.none()))
        emit(Effect.succeed(Chunk.make(3)))
      }).pipe(Stream.runCollect)
      assert.deepStrictEqual(ended, [1, 2])

      const failed = yield* StreamEmit.async<number, string>((emit) => {
        emit(Effect.succeed(Chunk.make(1)))
        emit(Effect.fail(Option.some("bad")))
      }).pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(failed, Exit.fail("bad"))
    })
  )

  it.effect("fromEffect and fromEffectChunk keep order with the emits around them", () =>
    Effect.gen(function* () {
      const out = yield* StreamEmit.async<number>((emit) => {
        emit.single(1)
        emit.fromEffect(Effect.sleep("10 millis").pipe(Effect.as(2)))
        emit.single(3)
        emit.fromEffectChunk(Effect.sleep("5 millis").pipe(Effect.as(Chunk.make(4, 5))))
        emit.chunk(Chunk.make(6))
        emit.end()
      }).pipe(Stream.runCollect, Effect.forkChild)
      yield* TestClock.adjust("20 millis")
      assert.deepStrictEqual(yield* Fiber.join(out), [1, 2, 3, 4, 5, 6])
    })
  )

  it.effect("fromEffect failing fails the stream, after the values before it", () =>
    Effect.gen(function* () {
      const exit = yield* StreamEmit.async<number, string>((emit) => {
        emit.single(1)
        emit.fromEffect(Effect.fail("effect failed"))
        emit.single(2)
      }).pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(exit, Exit.fail("effect failed"))
    })
  )

  it.effect("die, dieMessage and halt end the stream with their cause", () =>
    Effect.gen(function* () {
      const died = failureOf(
        yield* StreamEmit.async<number>((emit) => {
          emit.die("defect")
        }).pipe(Stream.runCollect, Effect.exit)
      )
      assert.isTrue(Cause.hasDies(died))
      assert.strictEqual(Cause.squash(died), "defect")

      const message = failureOf(
        yield* StreamEmit.async<number>((emit) => {
          emit.dieMessage("no more")
        }).pipe(Stream.runCollect, Effect.exit)
      )
      assert.strictEqual((Cause.squash(message) as Error).message, "no more")

      const halted = yield* StreamEmit.async<number, string>((emit) => {
        emit.single(1)
        emit.halt(Cause.fail("halted"))
      }).pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(halted, Exit.fail("halted"))
    })
  )

  it.effect("done emits a success value without ending (as in Effect 3) and fails with a failure", () =>
    Effect.gen(function* () {
      const values = yield* StreamEmit.async<number, string>((emit) => {
        emit.done(Exit.succeed(1))
        emit.done(Exit.succeed(2))
        emit.end()
      }).pipe(Stream.runCollect)
      assert.deepStrictEqual(values, [1, 2])

      const failed = yield* StreamEmit.async<number, string>((emit) => {
        emit.done(Exit.succeed(1))
        emit.done(Exit.fail("done failed"))
      }).pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(failed, Exit.fail("done failed"))
    })
  )

  it.effect('"unbounded" accepts everything without waiting', () =>
    Effect.gen(function* () {
      const settled: Array<number> = []
      const stream = StreamEmit.async<number>((emit) => {
        for (const i of range(1000)) emit.single(i).then(() => settled.push(i))
        emit.end()
      }, "unbounded")
      const pull = yield* Stream.toPull(stream)
      assert.deepStrictEqual(Array.from(yield* pull), range(1000))
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      assert.strictEqual(settled.length, 1000)
    }).pipe(Effect.scoped)
  )

  it.effect('{ strategy: "dropping" } drops the newest, { strategy: "sliding" } the oldest, both counted', () =>
    Effect.gen(function* () {
      const dropping = yield* StreamEmit.async<number>(
        (emit) => {
          for (const i of range(10)) emit.single(i)
          emit.end()
        },
        { bufferSize: 3, strategy: "dropping" }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(dropping, [1, 2, 3])

      const sliding = yield* StreamEmit.async<number>(
        (emit) => {
          for (const i of range(10)) emit.single(i)
          emit.end()
        },
        { bufferSize: 3, strategy: "sliding" }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(sliding, [8, 9, 10])

      const counted = yield* Metric.value(StreamEmitDropped("async"))
      assert.strictEqual(counted.count, 14)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("an invalid bufferSize dies at once, naming the option and the value", () =>
    Effect.gen(function* () {
      for (const bad of [0, -1, 1.5, Number.NaN]) {
        const exit = yield* StreamEmit.async<number>(() => {}, bad).pipe(Stream.runCollect, Effect.exit)
        const message = (Cause.squash(failureOf(exit)) as Error).message
        assert.include(message, "bufferSize")
        assert.include(message, String(bad))
      }
    })
  )
})

const StreamEmitDropped = (name: string) => Metrics.dropped("StreamEmit", name)

describe("StreamEmit.asyncEffect / asyncScoped", () => {
  it.effect("register's failure fails the stream after what it emitted", () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      const exit = yield* StreamEmit.asyncEffect<number, string>((emit) =>
        Effect.gen(function* () {
          yield* Effect.promise(() => emit.single(1))
          return yield* Effect.fail("register failed")
        })
      ).pipe(
        Stream.runForEach((n) => Effect.sync(() => seen.push(n))),
        Effect.exit
      )
      assert.deepStrictEqual(seen, [1])
      assert.deepStrictEqual(exit, Exit.fail("register failed"))
    })
  )

  it.effect("a register that awaits each emit is backpressured, not deadlocked", () =>
    Effect.gen(function* () {
      const out = yield* StreamEmit.asyncEffect<number>(
        (emit) =>
          Effect.promise(async () => {
            for (const i of range(20)) await emit.single(i)
            await emit.end()
          }),
        2
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, range(20))
    })
  )

  it.effect("asyncScoped releases what register acquired when the stream ends; forked fibers live until then", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      const out = yield* StreamEmit.asyncScoped<number>((emit) =>
        Effect.gen(function* () {
          yield* Effect.acquireRelease(
            Effect.sync(() => events.push("acquire")),
            () => Effect.sync(() => events.push("release"))
          )
          // A child of the registration, as the guide's producers are: it must outlive register itself.
          yield* Effect.forkChild(
            Effect.gen(function* () {
              for (const i of range(3)) {
                yield* Effect.sleep("1 second")
                yield* Effect.promise(() => emit.single(i))
              }
              yield* Effect.promise(() => emit.end())
            })
          )
        })
      ).pipe(Stream.runCollect, Effect.forkChild)
      yield* TestClock.adjust("3 seconds")
      assert.deepStrictEqual(yield* Fiber.join(out), [1, 2, 3])
      assert.deepStrictEqual(events, ["acquire", "release"])
    })
  )
})

describe("StreamEmit.asyncPush", () => {
  it.effect("is unbounded by default: every single returns true", () =>
    Effect.gen(function* () {
      const results: Array<boolean> = []
      const out = yield* StreamEmit.asyncPush<number>((emit) =>
        Effect.sync(() => {
          for (const i of range(10_000)) results.push(emit.single(i))
          emit.end()
        })
      ).pipe(Stream.runCollect)
      assert.strictEqual(out.length, 10_000)
      assert.isTrue(results.every(Boolean))
    })
  )

  it.effect('"dropping" drops the newest: single returns false for each, and each is counted', () =>
    Effect.gen(function* () {
      const results: Array<boolean> = []
      let dropped = -1
      const out = yield* StreamEmit.asyncPush<number>(
        (emit) =>
          Effect.sync(() => {
            for (const i of range(10)) results.push(emit.single(i))
            dropped = emit.dropped
            emit.end()
          }),
        { bufferSize: 2, strategy: "dropping", name: "drop-test" }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, [1, 2])
      assert.deepStrictEqual(results, [true, true, false, false, false, false, false, false, false, false])
      assert.strictEqual(dropped, 8)
      assert.strictEqual((yield* Metric.value(StreamEmitDropped("drop-test"))).count, 8)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a bufferSize without strategy drops the newest, as in Effect 3", () =>
    Effect.gen(function* () {
      const out = yield* StreamEmit.asyncPush<number>(
        (emit) =>
          Effect.sync(() => {
            emit.array(range(5))
            emit.end()
          }),
        { bufferSize: 3 }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, [1, 2, 3])
    })
  )

  it.effect('"sliding" drops the oldest: single returns false when an older value was evicted', () =>
    Effect.gen(function* () {
      const results: Array<boolean> = []
      let dropped = -1
      const out = yield* StreamEmit.asyncPush<number>(
        (emit) =>
          Effect.sync(() => {
            for (const i of range(10)) results.push(emit.single(i))
            dropped = emit.dropped
            emit.end()
          }),
        { bufferSize: 2, strategy: "sliding", name: "slide-test" }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, [9, 10])
      assert.deepStrictEqual(results, [true, true, false, false, false, false, false, false, false, false])
      assert.strictEqual(dropped, 8)
      assert.strictEqual((yield* Metric.value(StreamEmitDropped("slide-test"))).count, 8)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("array and chunk return false when any value was dropped", () =>
    Effect.gen(function* () {
      const results: Array<boolean> = []
      const out = yield* StreamEmit.asyncPush<number>(
        (emit) =>
          Effect.sync(() => {
            results.push(emit.array([1, 2]))
            results.push(emit.chunk(Chunk.make(3, 4)))
            emit.end()
          }),
        { bufferSize: 3, strategy: "dropping" }
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, [1, 2, 3])
      assert.deepStrictEqual(results, [true, false])
    })
  )

  it.effect("array copies what it is given: a producer may reuse its array", () =>
    Effect.gen(function* () {
      const out = yield* StreamEmit.asyncPush<number>((emit) =>
        Effect.sync(() => {
          const reused = [1, 2, 3]
          emit.array(reused)
          reused[0] = 99
          emit.array(reused)
          emit.end()
        })
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, [1, 2, 3, 99, 2, 3])
    })
  )

  it.effect("values before end/fail come first; emits after the end return false", () =>
    Effect.gen(function* () {
      let after: boolean | undefined
      const ended = yield* StreamEmit.asyncPush<number>((emit) =>
        Effect.sync(() => {
          emit.array([1, 2])
          emit.end()
          after = emit.single(3)
        })
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(ended, [1, 2])
      assert.isFalse(after)

      const seen: Array<number> = []
      const failed = yield* StreamEmit.asyncPush<number, string>((emit) =>
        Effect.sync(() => {
          emit.array([1, 2])
          emit.fail("push failed")
          after = emit.single(3)
        })
      ).pipe(
        Stream.runForEach((n) => Effect.sync(() => seen.push(n))),
        Effect.exit
      )
      assert.deepStrictEqual(seen, [1, 2])
      assert.deepStrictEqual(failed, Exit.fail("push failed"))
      assert.isFalse(after)
    })
  )

  it.effect("done(success) emits the value and ends; done(failure) fails", () =>
    Effect.gen(function* () {
      const ended = yield* StreamEmit.asyncPush<number, string>((emit) =>
        Effect.sync(() => {
          emit.single(1)
          emit.done(Exit.succeed(2))
          emit.single(3)
        })
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(ended, [1, 2])

      const failed = yield* StreamEmit.asyncPush<number, string>((emit) =>
        Effect.sync(() => emit.done(Exit.fail("done failed")))
      ).pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(failed, Exit.fail("done failed"))
    })
  )

  it.effect("die, dieMessage and halt", () =>
    Effect.gen(function* () {
      const died = failureOf(
        yield* StreamEmit.asyncPush<number>((emit) => Effect.sync(() => emit.die(42))).pipe(
          Stream.runCollect,
          Effect.exit
        )
      )
      assert.strictEqual(Cause.squash(died), 42)
      const message = failureOf(
        yield* StreamEmit.asyncPush<number>((emit) => Effect.sync(() => emit.dieMessage("gone"))).pipe(
          Stream.runCollect,
          Effect.exit
        )
      )
      assert.strictEqual((Cause.squash(message) as Error).message, "gone")
      const halted = yield* StreamEmit.asyncPush<number, string>((emit) =>
        Effect.sync(() => emit.halt(Cause.fail("halt")))
      ).pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(halted, Exit.fail("halt"))
    })
  )

  it.effect("register's scope is the stream's: acquired resources are released at the end, exactly once", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      let emitLater: StreamEmit.EmitOpsPush<never, number> | undefined
      const fiber = yield* StreamEmit.asyncPush<number>((emit) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            events.push("open")
            emitLater = emit
          }),
          () => Effect.sync(() => events.push("close"))
        )
      ).pipe(Stream.runCollect, Effect.forkChild({ startImmediately: true }))
      yield* Effect.yieldNow
      assert.deepStrictEqual(events, ["open"])
      emitLater!.single(1)
      emitLater!.end()
      assert.deepStrictEqual(yield* Fiber.join(fiber), [1])
      assert.deepStrictEqual(events, ["open", "close"])
      // An emit from a leaked callback after the end is a no-op, not a throw.
      assert.isFalse(emitLater!.single(2))
    })
  )

  it.effect("emits made in the same tick reach the consumer as one batch", () =>
    Effect.gen(function* () {
      const source = yield* capturedPush()
      const fiber = yield* source.stream.pipe(Stream.take(100), Stream.chunks, Stream.runCollect, Effect.forkChild)
      const emit = yield* source.registered
      yield* Effect.yieldNow
      for (const i of range(100)) emit.single(i)
      const batches = yield* Fiber.join(fiber)
      assert.strictEqual(batches.length, 1)
      assert.deepStrictEqual(Array.from(batches[0]), range(100))
    })
  )

  it.effect("a waiting consumer takes the batch before the next macrotask (no event-loop hop per batch)", () =>
    Effect.gen(function* () {
      const order: Array<string> = []
      const source = yield* capturedPush()
      const fiber = yield* source.stream.pipe(
        Stream.take(3),
        Stream.runForEachArray((batch) => Effect.sync(() => void order.push(`batch of ${batch.length}`))),
        Effect.forkChild
      )
      const emit = yield* source.registered
      yield* Effect.yieldNow
      // A source callback in its own macrotask, with another macrotask already queued behind it.
      yield* Effect.promise(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              setImmediate(() => {
                order.push("next macrotask")
                resolve()
              })
              for (const i of range(3)) emit.single(i)
            }, 0)
          )
      )
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(order, ["batch of 3", "next macrotask"])
    })
  )

  it.effect("an invalid strategy dies at once with a message naming it", () =>
    Effect.gen(function* () {
      const exit = yield* StreamEmit.asyncPush<number>(() => Effect.void, {
        bufferSize: 2,
        strategy: "suspend" as "dropping"
      }).pipe(Stream.runCollect, Effect.exit)
      const message = (Cause.squash(failureOf(exit)) as Error).message
      assert.include(message, "strategy")
      assert.include(message, "suspend")
    })
  )

  it.effect("the stream's scope closes when the consumer is interrupted", () =>
    Effect.gen(function* () {
      const scopeClosed = yield* Ref.make(false)
      const fiber = yield* StreamEmit.asyncPush<number>(() =>
        Effect.flatMap(Effect.scope, (scope) => Scope.addFinalizer(scope, Ref.set(scopeClosed, true)))
      ).pipe(Stream.runDrain, Effect.forkChild({ startImmediately: true }))
      yield* Effect.yieldNow
      assert.isFalse(yield* Ref.get(scopeClosed))
      yield* Fiber.interrupt(fiber)
      assert.isTrue(yield* Ref.get(scopeClosed))
    })
  )
})
