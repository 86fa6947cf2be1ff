/**
 * Child processes for the tests that kill a consumer with -9: a Node script started with this Node, ready once it
 * printed its first line, killed with the test's Scope; and the lines it appended to a results file.
 *
 * @since 0.2.0
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, type Scope } from "effect"

/**
 * Starts `script` with `args` on this Node; succeeds once the script wrote its first line to stdout ("ready").
 * Killed with SIGKILL when the Scope closes, if it still runs.
 *
 * @since 0.2.0
 * @category processes
 */
export const ready = (
  script: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: NodeJS.ProcessEnv | undefined } = {}
): Effect.Effect<ChildProcess.ChildProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = ChildProcess.spawn(process.execPath, [script, ...args], {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, ...options.env }
      })
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once("data", () => resolve())
        child.once("exit", (code) => reject(new Error(`${Path.basename(script)} exited with ${code} before ready`)))
      })
      return child
    }),
    (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  )

/**
 * A temporary directory of the test's own, removed with the Scope.
 *
 * @since 0.2.0
 * @category files
 */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), `${prefix}-`))),
    (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  )

/**
 * The non-empty lines of `file` (none while it does not exist).
 *
 * @since 0.2.0
 * @category files
 */
export const lines = (file: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.promise(async () =>
    (await Fs.readFile(file, "utf8").catch(() => "")).split("\n").filter((line) => line !== "")
  )
