// Calls the generated nodejs22.x handler the way the Node.js runtime does (await handler(event)),
// one event per line of the file given, and prints one JSON line per result or error.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [, , fnDir, eventsFile] = process.argv;
const { handler } = await import(pathToFileURL(resolve(fnDir, 'index.mjs')).href);
for (const line of readFileSync(eventsFile, 'utf8').split('\n').filter(Boolean)) {
  try {
    console.log(JSON.stringify(await handler(JSON.parse(line), {})));
  } catch (err) {
    console.log(JSON.stringify({ errorType: err.name, errorMessage: err.message }));
  }
}
process.exit(0);  // the handler keeps the program running for the next event
