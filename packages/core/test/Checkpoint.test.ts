import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Schedule, Stream } from "effect"
import { Checkpoint, Connector, type Driver, type Lifecycle } from "../src/index.ts"
import { scripted } from "./Scripted.ts"

/** A scripted source of numbered messages (cursor = the number): `send(from, to)` pushes them. */
const numbered = () => {
  const { driver, sessions } = scripted([() => Effect.succeed("conn")])
  const send = (from: number, to: number) =>
    Effect.sync(() => {
      const session = sessions.at(-1) as Driver.Session<number>
      for (let n = from; n <= to; n++) session.push(n, 1)
      session.flush()
    })
  return { driver, send }
}

const open =
  (driver: Driver.Driver<string, number>, opened: Array<Checkpoint.Saved | undefined>) =>
  (saved: Checkpoint.Saved | undefined) =>
    Effect.flatMap(
      Connector.resolve<number>(
        "scripted",
        { reconnect: Schedule.spaced("1 second"), lastSeenAt: saved?.savedAt },
        { liveness: false, overflow: { bufferSize: 1024 } }
      ),
      (options) => {
        opened.push(saved)
        return Connector.make(driver, options)
      }
    )

const temporaryFile = Effect.acquireRelease(
  Effect.promise(async () => Path.join(await Fs.mkdtemp(Path.join(Os.tmpdir(), "streamemit-ckpt-")), "ckpt.json")),
  (file) => Effect.promise(() => Fs.rm(Path.dirname(file), { recursive: true, force: true }))
)

describe("Checkpoint.resume", () => {
  it.live("saves the cursor before which every item is done (acks out of order), every N and on close", () =>
    Effect.gen(function* () {
      const store = yield* Checkpoint.Store
      const { driver, send } = numbered()
      const opened: Array<Checkpoint.Saved | undefined> = []
      yield* Effect.scoped(
        Effect.gen(function* () {
          const { handle, deliveries } = yield* Checkpoint.resume(
            { key: "feed", every: 3, interval: "1 hour" },
            open(driver, opened),
            (n) => String(n)
          )
          yield* handle.awaitConnection
          yield* send(1, 6)
          const items = yield* deliveries.pipe(Stream.take(6), Stream.runCollect)
          // 2 and 3 done, 1 not yet: nothing before which everything is done.
          yield* items[1]!.ack
          yield* items[2]!.ack
          yield* items[3]!.ack
          yield* Effect.sleep("20 millis")
          assert.isUndefined(yield* store.load("feed"), "3 done, but not the first: nothing saved")
          yield* items[0]!.ack
          yield* Effect.sleep("20 millis")
          // The 3rd done since the last save (and 1–4 all done): "4" saved.
          assert.strictEqual((yield* store.load("feed"))?.cursor, "4")
          // 5 is released (its work failed): it holds the checkpoint; 6 done after it does not move it.
          yield* items[4]!.release
          yield* items[5]!.ack
        })
      )
      // Closed cleanly: saved again, still before 5.
      assert.strictEqual((yield* store.load("feed"))?.cursor, "4")
      assert.deepStrictEqual(opened, [undefined])
    }).pipe(Effect.provide(Checkpoint.layerMemory))
  )

  it.live("a restart opens from the saved cursor with a Gap whose downtime counts from the save", () =>
    Effect.gen(function* () {
      const store = yield* Checkpoint.Store
      const savedAt = Date.now() - 5000
      yield* store.save("feed", { cursor: "41", savedAt })
      const { driver, send } = numbered()
      const opened: Array<Checkpoint.Saved | undefined> = []
      const signals = yield* Effect.scoped(
        Effect.gen(function* () {
          const { handle } = yield* Checkpoint.resume({ key: "feed" }, open(driver, opened), (n) => String(n))
          const collected = yield* handle.signals.pipe(
            Stream.take(4),
            Stream.runCollect,
            Effect.forkChild({ startImmediately: true })
          )
          yield* handle.awaitConnection
          yield* send(42, 42)
          return yield* Fiber.await(collected)
        })
      )
      assert.deepStrictEqual(opened, [{ cursor: "41", savedAt }])
      const exit = signals as unknown as Exit.Exit<ReadonlyArray<Lifecycle.Signal<number>>>
      assert.isTrue(Exit.isSuccess(exit))
      const list = (exit as Exit.Success<ReadonlyArray<Lifecycle.Signal<number>>>).value
      assert.deepStrictEqual(
        list.map((s) => s._tag),
        ["Connecting", "Connected", "Gap", "Message"]
      )
      const gap = list[2] as Lifecycle.Gap
      assert.isAtLeast(Duration.toMillis(gap.downtime), 5000)
    }).pipe(Effect.provide(Checkpoint.layerMemory))
  )

  it.live("invalid options are Config errors naming the option", () =>
    Effect.gen(function* () {
      const { driver } = numbered()
      for (const [options, option] of [
        [{ key: "" }, "checkpoint.key"],
        [{ key: "k", every: 0 }, "checkpoint.every"],
        [{ key: "k", interval: "soon" }, "checkpoint.interval"]
      ] as const) {
        const error = yield* Effect.flip(
          Effect.scoped(Checkpoint.resume(options as Checkpoint.Options, open(driver, []), String))
        )
        assert.strictEqual(error.reason._tag, "Config")
        assert.strictEqual((error.reason as { option?: string }).option, option)
      }
    }).pipe(Effect.provide(Checkpoint.layerMemory))
  )
})

/** The file store of `file`, as a fresh instance would open it. */
const storeIn = (file: string) =>
  Effect.provide(
    Effect.gen(function* () {
      return yield* Checkpoint.Store
    }),
    Checkpoint.layerFile(file)
  )

describe("Checkpoint.layerFile", () => {
  it.live("saves and loads across instances; a missing file is no checkpoint; keys kept side by side", () =>
    Effect.gen(function* () {
      const file = yield* temporaryFile
      const first = yield* storeIn(file)
      assert.isUndefined(yield* first.load("a"))
      yield* first.save("a", { cursor: "1", savedAt: 10 })
      yield* first.save("b", { cursor: "x", savedAt: 20 })
      yield* first.save("a", { cursor: "2", savedAt: 30 })
      const second = yield* storeIn(file)
      assert.deepStrictEqual(yield* second.load("a"), { cursor: "2", savedAt: 30 })
      assert.deepStrictEqual(yield* second.load("b"), { cursor: "x", savedAt: 20 })
      // Written whole, by rename: no temporary file left behind.
      assert.deepStrictEqual(yield* Effect.promise(() => Fs.readdir(Path.dirname(file))), ["ckpt.json"])
    }).pipe(Effect.scoped)
  )

  it.live("a corrupt or unreadable file is a Config error naming the key and the file, never a start from now", () =>
    Effect.gen(function* () {
      const file = yield* temporaryFile
      const load = (key: string) => Effect.flip(Effect.flatMap(storeIn(file), (store) => store.load(key)))
      yield* Effect.promise(() => Fs.writeFile(file, "{ torn"))
      const torn = yield* load("feed")
      assert.strictEqual(torn.reason._tag, "Config")
      assert.include(torn.message, `checkpoint "feed" in file ${file}`)
      yield* Effect.promise(() => Fs.writeFile(file, JSON.stringify({ feed: { cursor: 7 } })))
      const wrong = yield* load("feed")
      assert.include(wrong.message, "corrupt")
      // The same file through Checkpoint.resume: the stream fails at once.
      const { driver } = numbered()
      const exit = yield* Effect.exit(
        Effect.scoped(Checkpoint.resume({ key: "feed" }, open(driver, []), String)).pipe(
          Effect.provide(Checkpoint.layerFile(file))
        )
      )
      assert.isTrue(Exit.isFailure(exit))
    }).pipe(Effect.scoped)
  )
})
