/**
 * Resuming a watcher from a snapshot: what changed on disk while nothing watched comes first (reconciled, after a
 * `Gap` that says resumed), then live changes; what the consumer had not finished is not in the snapshot.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Delivery, Lifecycle } from "@streamemit/core"
import { Child, Expect, Wait } from "@streamemit/testkit"
import { Duration, Effect, Stream } from "effect"
import { FsWatcher } from "../src/index.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "streamemit-fs-snap-")))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** Runs a watcher from the snapshot, processing every change, until `until` holds; returns what it saw. */
const watchUntil = (
  root: string,
  snapshot: string,
  until: (seen: ReadonlyArray<Lifecycle.Signal<FsWatcher.Change>>) => boolean,
  during: Effect.Effect<void> = Effect.void
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { handle, signals } = yield* FsWatcher.checkpointed({ paths: root, snapshot: { path: snapshot } })
      const seen: Array<Lifecycle.Signal<FsWatcher.Change>> = []
      yield* signals.pipe(
        Stream.runForEach((signal) => {
          seen.push(signal._tag === "Message" ? new Lifecycle.Message({ message: signal.message.item }) : signal)
          return signal._tag === "Message" ? signal.message.ack : Effect.void
        }),
        Effect.forkScoped
      )
      yield* handle.awaitConnection
      yield* during
      yield* Wait.until(() => until(seen), "the changes")
      return seen
    })
  )

const messages = (seen: ReadonlyArray<Lifecycle.Signal<FsWatcher.Change>>) =>
  seen.flatMap((s) => (s._tag === "Message" ? [s.message] : []))

const relative = (root: string, change: FsWatcher.Change) =>
  `${change._tag} ${Path.relative(root, change.path)}${change.reconciled ? " (reconciled)" : ""}`

describe("FsWatcher.checkpointed", () => {
  it.live("a restart reports what changed while nothing watched, after a Gap that says resumed, then live", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const state = yield* tempDir
      const snapshot = Path.join(state, "tree.json")
      Fs.writeFileSync(Path.join(root, "a"), "1")
      Fs.writeFileSync(Path.join(root, "b"), "1")
      Fs.mkdirSync(Path.join(root, "d"))
      Fs.writeFileSync(Path.join(root, "d", "kept"), "1")
      // The first run: the initial scan, processed; the snapshot is written at its clean close.
      const first = yield* watchUntil(root, snapshot, (seen) => messages(seen).length >= 5)
      assert.sameMembers(
        messages(first).map((c) => relative(root, c)),
        ["AddDir ", "Add a", "Add b", "AddDir d", "Add d/kept"]
      )
      assert.isTrue(Fs.existsSync(snapshot))
      // While nothing watches.
      Fs.writeFileSync(Path.join(root, "a"), "changed, and longer")
      Fs.rmSync(Path.join(root, "b"))
      Fs.writeFileSync(Path.join(root, "c"), "new")
      Fs.mkdirSync(Path.join(root, "e"))
      Fs.writeFileSync(Path.join(root, "e", "f"), "new")
      yield* Effect.sleep("200 millis")
      const second = yield* watchUntil(
        root,
        snapshot,
        (seen) => messages(seen).some((c) => c.path.endsWith("live")),
        Effect.sync(() => Fs.writeFileSync(Path.join(root, "live"), "now"))
      )
      const reconciled = messages(second).filter((c) => c.reconciled)
      assert.sameMembers(
        reconciled.map((c) => relative(root, c)),
        [
          "Change a (reconciled)",
          "Unlink b (reconciled)",
          "Add c (reconciled)",
          "AddDir e (reconciled)",
          "Add e/f (reconciled)"
        ]
      )
      assert.deepStrictEqual(
        messages(second)
          .filter((c) => !c.reconciled)
          .map((c) => relative(root, c)),
        ["Add live"]
      )
      const tags = second.map((s) => s._tag)
      assert.deepStrictEqual(tags.slice(0, 3), ["Connecting", "Connected", "Gap"])
      const gap = second[2] as Lifecycle.Gap
      assert.strictEqual(gap.delivery, "resumed")
      // Counted from the snapshot's write (the first run's close): at least the 200 ms nothing watched.
      assert.isAtLeast(Duration.toMillis(gap.downtime), 200)
    }).pipe(Effect.scoped)
  )

  it.live("a change not acknowledged is not in the snapshot: the next run reports it again", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const state = yield* tempDir
      const snapshot = Path.join(state, "tree.json")
      Fs.writeFileSync(Path.join(root, "done"), "1")
      Fs.writeFileSync(Path.join(root, "failed"), "1")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const { deliveries } = yield* FsWatcher.checkpointed({ paths: root, snapshot: { path: snapshot } })
          // The work on "failed" fails: released, not in the snapshot (nor is anything after it).
          yield* Delivery.process(deliveries.pipe(Stream.take(3)), (change) =>
            change.path.endsWith("failed") ? Effect.fail("no") : Effect.void
          )
        })
      )
      const again = yield* watchUntil(root, snapshot, (seen) => messages(seen).some((c) => c.path.endsWith("failed")))
      assert.include(
        messages(again).map((c) => relative(root, c)),
        "Add failed (reconciled)"
      )
    }).pipe(Effect.scoped)
  )

  it.live(
    "kill -9 between snapshots, files changed while down, restart: every change reported, none lost",
    () =>
      Effect.gen(function* () {
        const root = yield* tempDir
        const state = yield* tempDir
        const [snapshot, results] = [Path.join(state, "tree.json"), Path.join(state, "results")]
        for (let i = 0; i < 200; i++) Fs.writeFileSync(Path.join(root, `f${i}`), "1")
        const script = new URL("./snapshot-process.ts", import.meta.url).pathname
        const start = Child.ready(script, [root, snapshot, results])
        const lines = () =>
          Fs.existsSync(results)
            ? Fs.readFileSync(results, "utf8")
                .split("\n")
                .filter((l) => l !== "")
            : []
        const first = yield* start
        yield* Wait.until(() => lines().length >= 201, "the initial scan processed", 10_000)
        // Live changes, then the process dies between two snapshots.
        for (let i = 0; i < 50; i++) Fs.writeFileSync(Path.join(root, `live${i}`), "1")
        yield* Wait.until(() => lines().filter((l) => l.startsWith("Add live")).length >= 25, "live changes at work")
        first.kill("SIGKILL")
        const before = lines().length
        // While it is down.
        for (let i = 0; i < 20; i++) Fs.writeFileSync(Path.join(root, `f${i}`), "changed while down")
        for (let i = 20; i < 30; i++) Fs.rmSync(Path.join(root, `f${i}`))
        for (let i = 0; i < 10; i++) Fs.writeFileSync(Path.join(root, `down${i}`), "1")
        yield* start
        const reportedAfter = (pattern: (i: number) => RegExp, from: number, to: number) => {
          const after = lines().slice(before)
          for (let i = from; i < to; i++) if (!after.some((l) => pattern(i).test(l))) return false
          return true
        }
        // Each change made while down is reported: a changed file (as Change, or Add when the consumer's last
        // snapshot did not have it yet), a removed one, an added one.
        yield* Wait.until(
          () =>
            reportedAfter((i) => new RegExp(`^(Change|Add) f${i}$`), 0, 20) &&
            reportedAfter((i) => new RegExp(`^Unlink f${i}$`), 20, 30) &&
            reportedAfter((i) => new RegExp(`^Add down${i}$`), 0, 10),
          "the changes made while down",
          10_000
        )
        const all = lines()
        // Every live file is reported (by the first run, or again by the second when the kill came first).
        for (let i = 0; i < 50; i++) assert.include(all, `Add live${i}`)
        assert.include(all.slice(before), "gap resumed")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("a corrupt snapshot is a Config error naming the file", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const state = yield* tempDir
      const snapshot = Path.join(state, "tree.json")
      Fs.writeFileSync(snapshot, "{ torn")
      const exit = yield* Effect.exit(
        Effect.scoped(FsWatcher.checkpointed({ paths: root, snapshot: { path: snapshot } }))
      )
      const error = Expect.connectorError(exit)
      assert.strictEqual(error.reason._tag, "Config")
      assert.include(error.message, snapshot)
    }).pipe(Effect.scoped)
  )
})
