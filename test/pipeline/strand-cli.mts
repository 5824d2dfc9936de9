// Runs the CLI from source (for tests that need a real process: signals, kills).
import { run } from '../../src/cli/main.js';

process.exitCode = await run(process.argv);
