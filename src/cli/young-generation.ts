import { setFlagsFromString } from 'node:v8';

/**
 * A server's start-up (some 1,600 module files, the migrations, Ajv and fast-json-stringify compiling every
 * route's schemas) keeps so much alive that V8 grows its young generation to the maximum, 2 × 16 MB, and
 * an idle server keeps that committed for half an hour: about 30 MB, a quarter of its idle memory
 * (docs/PERFORMANCE.md, "Idle memory"). So the young generation may not grow while a server starts; once
 * the server is up it grows as before, with the load. qrun.ts imports this module first, as the growth
 * starts with the first modules.
 *
 * Left alone when the operator sizes the young generation (--max-semi-space-size or
 * --semi-space-growth-factor in node's flags or NODE_OPTIONS), and in the client commands.
 */

/** The server's commands (none: `start`, the default); the others are the short-lived client commands. */
export const SERVER_COMMANDS: ReadonlySet<string | undefined> = new Set([
  undefined,
  'start',
  'api',
  'worker',
  'migrate',
]);

const operatorSized = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) =>
  /semi[-_]space/.test(flag),
);
let held = false;
if (SERVER_COMMANDS.has(process.argv[2]) && !operatorSized) {
  setFlagsFromString('--semi-space-growth-factor=1');
  held = true;
}

/** Lets the young generation grow again (by V8's default factor, 2): call it once the server is up. */
export function releaseYoungGeneration(): void {
  if (!held) return;
  held = false;
  setFlagsFromString('--semi-space-growth-factor=2');
}
