import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { type ConnectorError, type Lifecycle, Metrics } from "@streamemit/core"
import { Expect, Resources, Wait } from "@streamemit/testkit"
import { Effect, Fiber, Metric, Stream } from "effect"
import { FsWatcher } from "../src/index.ts"

const errorOf = Expect.connectorError

/** A temp directory of the test's own, removed with its Scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "streamemit-fs-")))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const label = (change: FsWatcher.Change, root: string) => `${change._tag} ${Path.relative(root, change.path)}`

/** Starts a handle and records every signal; resolves once it is Connected (initial scan done). */
const watching = (options: FsWatcher.Options) =>
  Effect.gen(function* () {
    const handle = yield* FsWatcher.make(options)
    const signals: Array<Lifecycle.Signal<FsWatcher.Change>> = []
    yield* handle.signals.pipe(
      Stream.runForEach((s) => Effect.sync(() => signals.push(s))),
      Effect.forkChild({ startImmediately: true })
    )
    yield* Wait.status(handle, "Connected")
    // The collector has taken everything up to the in-band Connected (the status says it, the stream may lag).
    yield* Wait.until(() => signals.some((s) => s._tag === "Connected"), "Connected in-band")
    const changes = () => signals.flatMap((s) => (s._tag === "Message" ? [s.message] : []))
    return { handle, signals, changes }
  })

/** The consumer's view of the tree, built from the changes in order. */
const view = (changes: ReadonlyArray<FsWatcher.Change>) => {
  const exists = new Map<string, boolean>()
  for (const c of changes) exists.set(c.path, c._tag === "Add" || c._tag === "Change" || c._tag === "AddDir")
  return new Set([...exists].filter(([, e]) => e).map(([p]) => p))
}

describe("FsWatcher events", () => {
  it.live("create, modify, rename and delete files; nested directories", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { changes } = yield* watching({ paths: dir, initial: false })
      Fs.writeFileSync(Path.join(dir, "a.txt"), "1")
      yield* Wait.until(() => changes().some((c) => label(c, dir) === "Add a.txt"), "Add a.txt")
      Fs.appendFileSync(Path.join(dir, "a.txt"), "2")
      yield* Wait.until(() => changes().some((c) => label(c, dir) === "Change a.txt"), "Change a.txt")
      Fs.renameSync(Path.join(dir, "a.txt"), Path.join(dir, "b.txt"))
      yield* Wait.until(() => changes().some((c) => label(c, dir) === "Add b.txt"), "Add b.txt")
      Fs.mkdirSync(Path.join(dir, "sub", "deeper"), { recursive: true })
      Fs.writeFileSync(Path.join(dir, "sub", "deeper", "c.txt"), "c")
      yield* Wait.until(() => changes().some((c) => label(c, dir) === "Add sub/deeper/c.txt"), "nested Add")
      Fs.rmSync(Path.join(dir, "b.txt"))
      Fs.rmSync(Path.join(dir, "sub"), { recursive: true })
      yield* Wait.until(() => changes().some((c) => label(c, dir) === "UnlinkDir sub"), "UnlinkDir sub")
      // Unlinks wait out chokidar's atomic-save window (100 ms) before they are reported.
      const expected = ["Unlink a.txt", "AddDir sub", "AddDir sub/deeper", "Unlink b.txt", "Unlink sub/deeper/c.txt"]
      yield* Wait.until(() => {
        const labels = changes().map((c) => label(c, dir))
        return expected.every((e) => labels.includes(e))
      }, expected.join(", "))
      assert.isTrue(changes().every((c) => Path.isAbsolute(c.path)))
      assert.deepStrictEqual(view(changes()), new Set())
    }).pipe(Effect.scoped)
  )

  it.live("the initial scan comes as Adds marked initial, all before Connected; stats when asked", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      Fs.mkdirSync(Path.join(dir, "d"))
      Fs.writeFileSync(Path.join(dir, "d", "x"), "xx")
      Fs.writeFileSync(Path.join(dir, "y"), "y")
      const { signals } = yield* watching({ paths: dir, stats: true })
      const tags = signals.map((s) =>
        s._tag === "Message" ? `${s.message._tag} ${Path.relative(dir, s.message.path)}` : s._tag
      )
      const connected = tags.indexOf("Connected")
      assert.deepStrictEqual(new Set(tags.slice(1, connected)), new Set(["AddDir ", "AddDir d", "Add d/x", "Add y"]))
      const x = signals.find((s) => s._tag === "Message" && Path.basename(s.message.path) === "x")
      assert.isTrue(
        x?._tag === "Message" && x.message._tag === "Add" && x.message.initial && x.message.stats?.size === 2
      )
    }).pipe(Effect.scoped)
  )

  it.live("an atomic save (write a temp file, rename it over) is one Change", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = Path.join(dir, "doc.txt")
      Fs.writeFileSync(file, "v1")
      const { changes } = yield* watching({ paths: dir, initial: false, ignored: "**/*.tmp" })
      Fs.writeFileSync(Path.join(dir, "doc.txt.tmp"), "v2")
      Fs.renameSync(Path.join(dir, "doc.txt.tmp"), file)
      yield* Wait.until(() => changes().some((c) => c.path === file), "the save")
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(
        changes().map((c) => label(c, dir)),
        ["Change doc.txt"]
      )
    }).pipe(Effect.scoped)
  )

  it.live("ignored: globs (relative to the root), RegExps and functions", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { changes } = yield* watching({
        paths: dir,
        initial: false,
        ignored: ["**/*.log", "node_modules/**", "node_modules", /\.secret$/, (path) => path.endsWith("skip.me")]
      })
      Fs.mkdirSync(Path.join(dir, "node_modules", "pkg"), { recursive: true })
      for (const name of ["a.log", "sub.secret", "skip.me", "node_modules/pkg/index.js", "kept.txt"]) {
        Fs.writeFileSync(Path.join(dir, name), "x")
      }
      yield* Wait.until(() => changes().some((c) => label(c, dir) === "Add kept.txt"), "kept.txt")
      yield* Effect.sleep("200 millis")
      assert.deepStrictEqual(
        changes().map((c) => label(c, dir)),
        ["Add kept.txt"]
      )
    }).pipe(Effect.scoped)
  )

  it.live("depth limits the levels; symlinks are not followed by default", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const outside = yield* tempDir
      Fs.writeFileSync(Path.join(outside, "target.txt"), "t")
      Fs.mkdirSync(Path.join(dir, "one", "two"), { recursive: true })
      Fs.writeFileSync(Path.join(dir, "one", "a"), "a")
      Fs.writeFileSync(Path.join(dir, "one", "two", "b"), "b")
      Fs.symlinkSync(outside, Path.join(dir, "link"))
      const { changes } = yield* watching({ paths: dir, depth: 1 })
      const labels = changes().map((c) => label(c, dir))
      assert.include(labels, "Add one/a")
      assert.notInclude(labels, "Add one/two/b")
      assert.isFalse(
        labels.some((l) => l.includes("target.txt")),
        "the link is not followed"
      )
      assert.isTrue(
        labels.some((l) => l.endsWith(" link")),
        "the link itself is reported"
      )
    }).pipe(Effect.scoped)
  )

  it.live("coalesce merges the rapid events of a path into its final state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { handle, changes } = yield* watching({ paths: dir, initial: false, coalesce: "500 millis" })
      const file = Path.join(dir, "busy.txt")
      const gone = Path.join(dir, "gone.txt")
      Fs.writeFileSync(file, "1")
      Fs.writeFileSync(gone, "1")
      for (let i = 2; i < 6; i++) {
        yield* Effect.sleep("20 millis")
        Fs.appendFileSync(file, String(i))
      }
      Fs.rmSync(gone)
      yield* Wait.until(() => changes().length > 0, "the window to close")
      yield* Effect.sleep("700 millis")
      assert.deepStrictEqual(
        changes().map((c) => label(c, dir)),
        ["Add busy.txt"]
      )
      // The Changes merged into busy.txt's Add, and gone.txt's Add + Unlink, are counted as dropped.
      assert.isAtLeast((yield* handle.stats).dropped, 2)
    }).pipe(Effect.scoped)
  )

  it.live("merging never changes what happened: a path that changes kind is an unlink, then an add", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = Path.join(dir, "was-a-file")
      const folder = Path.join(dir, "was-a-dir")
      const recreated = Path.join(dir, "recreated-dir")
      Fs.writeFileSync(file, "1")
      Fs.mkdirSync(folder)
      Fs.mkdirSync(recreated)
      const { changes } = yield* watching({ paths: dir, coalesce: "1500 millis" })
      const before = changes().length
      // Inside one coalesce window, with time for chokidar to report each step (its unlinks wait 100 ms): the
      // consumer sees only the merged result.
      Fs.rmSync(file)
      Fs.rmdirSync(folder)
      Fs.rmdirSync(recreated)
      yield* Effect.sleep("300 millis")
      Fs.mkdirSync(file)
      Fs.writeFileSync(folder, "now a file")
      Fs.mkdirSync(recreated)
      yield* Wait.until(() => changes().length >= before + 6, "the merged changes", 5000)
      yield* Effect.sleep("300 millis")
      const after = changes()
        .slice(before)
        .map((c) => label(c, dir))
      assert.deepStrictEqual(
        new Set(after),
        new Set([
          "Unlink was-a-file",
          "AddDir was-a-file",
          "UnlinkDir was-a-dir",
          "Add was-a-dir",
          "UnlinkDir recreated-dir",
          "AddDir recreated-dir"
        ])
      )
      assert.strictEqual(after.length, 6)
      // Each path's removal comes before its addition.
      for (const name of ["was-a-file", "was-a-dir", "recreated-dir"]) {
        const removed = after.findIndex((l) => l.startsWith("Unlink") && l.endsWith(` ${name}`))
        const added = after.findIndex((l) => l.startsWith("Add") && l.endsWith(` ${name}`))
        assert.isBelow(removed, added, name)
      }
    }).pipe(Effect.scoped)
  )
})

describe("FsWatcher overflow, errors and cleanup", () => {
  it.live("a slow consumer still gets the whole initial scan before Connected, every Add marked initial", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const total = 2000
      for (let i = 0; i < total; i++) Fs.writeFileSync(Path.join(dir, `f${i}`), "1")
      const handle = yield* FsWatcher.make({ paths: dir, overflow: { bufferSize: 16 } })
      const signals = yield* handle.signals.pipe(
        Stream.tap((s) => (s._tag === "Message" ? Effect.sleep("1 millis") : Effect.void)),
        Stream.takeUntil((s) => s._tag === "Connected"),
        Stream.runCollect
      )
      const messages = signals.flatMap((s) => (s._tag === "Message" ? [s.message] : []))
      assert.strictEqual(signals.at(-1)?._tag, "Connected")
      assert.strictEqual(messages.length, total + 1, "every file and the root, before Connected")
      assert.isTrue(messages.every((c) => (c._tag === "Add" || c._tag === "AddDir") && c.initial))
      assert.strictEqual(new Set(messages.map((c) => c.path)).size, total + 1, "no path twice")
      assert.isAbove((yield* handle.stats).pauses, 0, "the consumer was slow enough to make the watcher merge")
    }).pipe(Effect.scoped)
  )

  it.live(
    "5,000 files against a slow consumer: bounded buffer, merges counted, every final state arrives",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const handle = yield* FsWatcher.make({ paths: dir, initial: false, overflow: { bufferSize: 64 } })
        yield* Wait.status(handle, "Connected")
        const seen: Array<FsWatcher.Change> = []
        let maxDepth = 0
        yield* handle.messages.pipe(
          Stream.runForEach((c) =>
            Effect.gen(function* () {
              seen.push(c)
              maxDepth = Math.max(maxDepth, (yield* handle.stats).depth)
              if (seen.length % 50 === 0) yield* Effect.sleep("2 millis")
            })
          ),
          Effect.forkChild({ startImmediately: true })
        )
        for (let i = 0; i < 5000; i++) Fs.writeFileSync(Path.join(dir, `f${i}`), "1")
        for (let i = 0; i < 5000; i += 2) Fs.appendFileSync(Path.join(dir, `f${i}`), "2")
        for (let i = 0; i < 5000; i += 5) Fs.rmSync(Path.join(dir, `f${i}`))
        const expected = new Set(Fs.readdirSync(dir).map((name) => Path.join(dir, name)))
        const same = () => {
          const v = view(seen)
          return v.size === expected.size && [...expected].every((p) => v.has(p))
        }
        yield* Wait.until(same, "every path's final state", 30_000)
        assert.isAtMost(maxDepth, 64 + 64)
        assert.isAbove((yield* handle.stats).pauses, 0, "the slow consumer switched the watcher to coalescing")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "the kernel's inotify queue overflows while the process is busy: Gap, then a rescan that reports what changed",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        // Known before: one file that will be modified, one that will be removed, one left alone.
        Fs.writeFileSync(Path.join(dir, "modified"), "1")
        Fs.writeFileSync(Path.join(dir, "removed"), "1")
        Fs.writeFileSync(Path.join(dir, "untouched"), "1")
        const old = Date.now() / 1000 - 3600
        Fs.utimesSync(Path.join(dir, "untouched"), old, old)
        const { handle, signals, changes } = yield* watching({ paths: dir, initial: false })
        const script = [
          `const fs = require("fs"), path = require("path"), dir = ${JSON.stringify(dir)}`,
          "for (let i = 0; i < 10000; i++) fs.writeFileSync(path.join(dir, 'f' + i), 'x')",
          "fs.appendFileSync(path.join(dir, 'modified'), '2')",
          "fs.rmSync(path.join(dir, 'removed'))"
        ].join("; ")
        // The event loop is blocked while another process writes 10,000 files: 20,000+ inotify events, more
        // than the kernel queues (16,384).
        ChildProcess.execFileSync(process.execPath, ["-e", script])
        // The consumer's view: every file on disk but "untouched", which it was never told about (initial: false)
        // and which did not change.
        const expected = new Set(
          Fs.readdirSync(dir)
            .filter((name) => name !== "untouched")
            .map((name) => Path.join(dir, name))
        )
        const seen = () => view(changes().filter((c) => c.path !== dir))
        yield* Wait.until(
          () => {
            const v = seen()
            return v.size === expected.size && [...v].every((p) => expected.has(p))
          },
          "every file written reported, the modified one too",
          30_000
        )
        const tags = signals.map((s) => s._tag)
        const disconnected = signals.find((s): s is Lifecycle.Disconnected => s._tag === "Disconnected")
        assert.isDefined(disconnected, "the overflow is said, not silent")
        assert.strictEqual(disconnected!.error.reason._tag, "Overflow")
        assert.include(disconnected!.error.message, "inotify")
        const gap = signals.findIndex((s) => s._tag === "Gap")
        assert.isAbove(gap, tags.indexOf("Disconnected"))
        assert.strictEqual((signals[gap] as Lifecycle.Gap).delivery, "possible-loss")
        const afterGap = signals.slice(gap + 1).flatMap((s) => (s._tag === "Message" ? [label(s.message, dir)] : []))
        assert.include(afterGap, "Change modified", "a change lost with the queue is reported by the rescan")
        assert.include(afterGap, "Unlink removed", "a removal lost with the queue is reported by the rescan")
        assert.notInclude(afterGap, "Change untouched", "what did not change is not reported")
        assert.notInclude(afterGap, "Add untouched")
        assert.strictEqual((yield* handle.status)._tag, "Connected")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("a burst the kernel queue holds (3,000 files) is no overflow: no Gap, every file once", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { signals, changes } = yield* watching({ paths: dir, initial: false })
      const script = `const fs = require("fs"); for (let i = 0; i < 3000; i++) fs.writeFileSync(${JSON.stringify(dir)} + "/f" + i, "x")`
      ChildProcess.execFileSync(process.execPath, ["-e", script])
      yield* Wait.until(() => changes().length >= 3000, "3,000 Adds", 30_000)
      yield* Effect.sleep("300 millis")
      assert.strictEqual(changes().length, 3000)
      assert.isFalse(signals.some((s) => s._tag === "Gap" || s._tag === "Disconnected"))
    }).pipe(Effect.scoped)
  )

  it.live("a missing root is a Config error naming it; waitForPaths waits for it to appear", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const missing = Path.join(dir, "not-yet")
      const error = errorOf(yield* FsWatcher.stream({ paths: [dir, missing] }).pipe(Stream.runDrain, Effect.exit))
      assert.strictEqual(error.reason._tag, "Config")
      assert.strictEqual((error.reason as ConnectorError.Config).option, "paths")
      assert.include(error.message, missing)
      const { changes } = yield* watching({ paths: missing, waitForPaths: true })
      Fs.mkdirSync(missing)
      Fs.writeFileSync(Path.join(missing, "hello"), "x")
      yield* Wait.until(() => changes().some((c) => c.path === Path.join(missing, "hello")), "the file in the new root")
    }).pipe(Effect.scoped)
  )

  it.live("invalid options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      const cases: Array<[FsWatcher.Options, string]> = [
        [{ paths: [] }, "paths"],
        [{ paths: ".", depth: -1 }, "depth"],
        [{ paths: ".", ignored: [42 as never] }, "ignored"],
        [{ paths: ".", coalesce: "soon" as never }, "coalesce"],
        [{ paths: ".", overflow: { bufferSize: 0 } }, "overflow.bufferSize"]
      ]
      for (const [options, option] of cases) {
        const error = errorOf(yield* FsWatcher.stream(options).pipe(Stream.runDrain, Effect.exit))
        assert.strictEqual(error.reason._tag, "Config", option)
        assert.strictEqual((error.reason as ConnectorError.Config).option, option)
      }
    })
  )

  it.live("scope end closes the watcher: no fs handles or timers remain, also when interrupted mid-scan", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      for (let d = 0; d < 40; d++) {
        Fs.mkdirSync(Path.join(dir, `d${d}`))
        for (let f = 0; f < 50; f++) Fs.writeFileSync(Path.join(dir, `d${d}`, `f${f}`), "x")
      }
      const baseline = Resources.snapshot()
      // Interrupted during the initial scan of 2,000 files.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* FsWatcher.make({ paths: dir })
          const first = yield* handle.messages.pipe(Stream.take(1), Stream.runCollect)
          assert.strictEqual(first.length, 1)
          assert.strictEqual((yield* handle.status)._tag, "Connecting")
        })
      )
      yield* Resources.expectNoLeaks(baseline)
      // A full run, with a change seen, then closed.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const { changes } = yield* watching({ paths: dir, initial: false })
          Fs.writeFileSync(Path.join(dir, "late"), "x")
          yield* Wait.until(() => changes().length > 0, "a change")
        })
      )
      yield* Resources.expectNoLeaks(baseline)
    }).pipe(Effect.scoped)
  )

  it.live("order and metrics: changes of one file arrive in order; messages are counted", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const handle = yield* FsWatcher.make({ paths: dir, initial: false, name: "order" })
      yield* Wait.status(handle, "Connected")
      const received = yield* handle.messages.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      const file = Path.join(dir, "f")
      Fs.writeFileSync(file, "1")
      yield* Effect.sleep("150 millis")
      Fs.appendFileSync(file, "2")
      yield* Effect.sleep("150 millis")
      Fs.rmSync(file)
      const got = yield* Fiber.join(received)
      assert.deepStrictEqual(
        got.map((c) => c._tag),
        ["Add", "Change", "Unlink"]
      )
      assert.isAtLeast((yield* Metric.value(Metrics.forConnector("fs-watcher", "order").messages)).count, 3)
    }).pipe(Effect.scoped)
  )
})
