// dist/cjs is CommonJS inside a "type": "module" package: mark the folder as such.
import { writeFileSync } from "node:fs";
writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), '{ "type": "commonjs" }\n');
writeFileSync(new URL("../dist/esm/package.json", import.meta.url), '{ "type": "module" }\n');
