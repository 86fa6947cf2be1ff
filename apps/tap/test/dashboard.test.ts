/**
 * The live dashboard in a real browser (Debian's chromium, driven by playwright-core): the tap on the demo sources
 * and a WebSocket feed of the test's own; the feed's connection is killed mid-run, and the page shows the gap.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Wait, WsServer } from "@streamemit/testkit"
import { Effect } from "effect"
import { chromium } from "playwright-core"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
// The README's picture is refreshed with UPDATE_SCREENSHOT=1; otherwise the shot goes to a temporary file.
const screenshot =
  process.env.UPDATE_SCREENSHOT === "1"
    ? fileURLToPath(new URL("../docs/dashboard.png", import.meta.url))
    : `${process.env.TMPDIR ?? "/tmp"}/streamemit-dashboard-${process.pid}.png`
const CHROMIUM = "/usr/bin/chromium"

/** Chromium is not on a new machine: install it with apt when we can (root, apt reachable). */
const ensureChromium = (): string | undefined => {
  if (Fs.existsSync(CHROMIUM)) return undefined
  const install = ChildProcess.spawnSync("apt-get", ["install", "-y", "chromium"], {
    encoding: "utf8",
    timeout: 300_000
  })
  if (install.status === 0 && Fs.existsSync(CHROMIUM)) return undefined
  return `chromium could not be installed with apt-get (${install.error?.message ?? install.stderr?.split("\n").filter(Boolean).at(-1) ?? `exit ${install.status}`})`
}
const missing = ensureChromium()

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = Net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

describe("the tap's dashboard", () => {
  if (missing !== undefined) {
    it.skip(`in a browser: skipped, ${missing}`, () => {})
    return
  }

  it.live(
    "shows every source live; a killed connection appears as a gap on the timeline",
    () =>
      Effect.gen(function* () {
        let tick = 0
        const feed = yield* WsServer.make({
          onConnection: (connection) => {
            const timer = setInterval(() => connection.socket.send(JSON.stringify({ tick: ++tick })), 100)
            connection.socket.once("close", () => clearInterval(timer))
          }
        })
        const port = yield* Effect.promise(freePort)
        const tap = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const child = ChildProcess.spawn(
              process.execPath,
              [bin, "--demo", "--ui", String(port), "--duration", "40s", "--json", `${feed.url}/feed`],
              { stdio: ["ignore", "ignore", "pipe"] }
            )
            let stderr = ""
            child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
            return { child, stderr: () => stderr }
          }),
          ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
        )
        yield* Wait.until(() => tap.stderr().includes("dashboard at"), "the dashboard", 20_000)
        const browser = yield* Effect.acquireRelease(
          Effect.promise(() => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] })),
          (browser) => Effect.promise(() => browser.close())
        )
        const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1280, height: 900 } }))
        yield* Effect.promise(() => page.goto(`http://127.0.0.1:${port}/`))
        // Every source shows up and connects (the demo's sources and our feed).
        yield* Effect.promise(() =>
          page.waitForFunction(
            () =>
              document.querySelectorAll("tr.source").length >= 5 &&
              document.querySelector("tr.source td.state-connected") !== null,
            undefined,
            { timeout: 20_000 }
          )
        )
        const feedRow = yield* Effect.promise(() =>
          page.evaluate(() =>
            Array.from(document.querySelectorAll("tr.source")).findIndex((row) => row.textContent!.includes("/feed"))
          )
        )
        assert.isAtLeast(feedRow, 0, "our feed is on the page")
        yield* Effect.promise(() => page.click(`tr.source[data-index="${feedRow}"]`))
        // Messages flow: the total of the feed grows, the latest messages show its ticks.
        yield* Effect.promise(() =>
          page.waitForFunction(
            () => (document.getElementById("recent")!.textContent ?? "").includes("tick"),
            undefined,
            {
              timeout: 10_000
            }
          )
        )
        // Kill the feed's connection: the tap reconnects, and the page shows the gap with its delivery kind.
        yield* feed.awaitConnections(1)
        feed.connections[0]!.socket.terminate()
        yield* Effect.promise(() =>
          page.waitForFunction(
            () => (document.getElementById("timeline")!.textContent ?? "").includes("gap: possible-loss"),
            undefined,
            { timeout: 15_000 }
          )
        )
        const timeline = yield* Effect.promise(() => page.textContent("#timeline"))
        assert.include(timeline, "disconnected")
        assert.match(timeline!, /gap: possible-loss, down \d+ ms/)
        yield* Effect.promise(() => page.screenshot({ path: screenshot, fullPage: true }))
      }).pipe(Effect.scoped),
    90_000
  )
})
