// node validate_openapi.mjs FILE: checks an OpenAPI document against the official OpenAPI schema
// (3.0 or 3.1, from @seriousme/openapi-schema-validator, with every $ref resolved). Prints
// {"valid": bool, "version": "3.1", "errors": [...]} and exits 0 when valid.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const validator = new Validator();
const doc = JSON.parse(readFileSync(process.argv[2], "utf8"));
const res = await validator.validate(doc);
let refs = true;
try {
  validator.resolveRefs();
} catch (e) {
  refs = false;
  res.valid = false;
  res.errors = [{ message: `$ref: ${e.message}` }];
}
console.log(JSON.stringify({ valid: res.valid, version: validator.version, refs, errors: res.errors || [] }));
process.exit(res.valid ? 0 : 1);
