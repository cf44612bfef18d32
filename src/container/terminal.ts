/**
 * The caller's side of a container's terminal, for front ends (`hako exec -t`, `hako attach`): the
 * relay between the caller's terminal and a pty master hako was handed over the console socket,
 * the caller's window size, and closing the master when done. A facade over the container's
 * private modules (_tty.ts, _pipe.ts), so the CLI does not reach into them.
 *
 * @module
 */
export {
  callerWindowSize,
  nonBlockingPipe,
  rawCallerTerminal,
  type RelayOptions,
  resizeToCaller,
  TerminalRelay,
  writeAllTo,
} from "./_tty.ts";
export { closeFd } from "./_pipe.ts";
