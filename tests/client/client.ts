// A client generated from Palisade's OpenAPI document, run against a live
// server: register -> login (password grant) -> profile -> refresh ->
// profile -> logout -> profile is 401.
//
// `paths` and `components` come from `schema.d.ts`, which run.sh generates
// with openapi-typescript from BASE_URL/openapi.json right before tsc
// compiles this file (strict). Every request body and every response is
// typed by that document: there is no `any` and no cast here. If the
// document changes so that this flow no longer type-checks, tsc fails and
// so does run.sh.
//
// Usage (after tsc): node client.js BASE_URL
import { randomBytes } from "node:crypto";
import createClient, { type BodySerializer } from "openapi-fetch";
import type { components, paths } from "./schema.js";

type User = components["schemas"]["User"];
type RegisterBody =
  paths["/auth/register"]["post"]["requestBody"]["content"]["application/json"];
type TokenResponse = components["schemas"]["TokenResponse"];
type TokenOperation = paths["/auth/token"]["post"];
// The form body exactly as the document declares it for this media type.
type TokenForm =
  TokenOperation["requestBody"]["content"]["application/x-www-form-urlencoded"];

// Compile-time checks that the document says what the flow relies on.
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T | undefined => undefined;
// The user object lists exactly these fields (a field added to or dropped
// from the schema fails the build; the runtime check below catches a server
// that sends fields the document does not name).
const USER_KEYS = [
  "id", "email", "username", "name", "role", "disabled", "email_verified",
  "created_at", "updated_at",
] as const satisfies readonly (keyof User)[];
assertType<Equals<(typeof USER_KEYS)[number], keyof User>>();
const TOKEN_KEYS = [
  "access_token", "token_type", "expires_in", "refresh_token", "scope",
] as const satisfies readonly (keyof TokenResponse)[];
assertType<Equals<(typeof TOKEN_KEYS)[number], keyof TokenResponse>>();
// Logout's 204 has no body.
assertType<Equals<paths["/auth/logout"]["post"]["responses"][204]["content"], undefined>>();

// openapi-fetch's bodySerializer, typed by the generated request body of the
// token endpoint: only the fields the document names, with their types.
const formSerializer: BodySerializer<TokenOperation> = (form: TokenForm) => {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    if (typeof value === "string") params.append(key, value);
  }
  return params;
};
// openapi-fetch only switches off its JSON Content-Type when told.
const FORM = { "Content-Type": "application/x-www-form-urlencoded" } as const;

const baseUrl = process.argv[2];
if (baseUrl === undefined || baseUrl === "") {
  console.error("usage: node client.js BASE_URL");
  process.exit(2);
}
const client = createClient<paths>({ baseUrl });
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

class StepFailed extends Error {}
function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new StepFailed(what);
}
function sameKeys(body: object, expected: readonly string[], what: string): void {
  const got = Object.keys(body).sort().join(",");
  const want = [...expected].sort().join(",");
  check(got === want, `${what}: fields ${got}, the document names ${want}`);
}
function checkUser(user: User, want: { username: string; email: string }, what: string): void {
  sameKeys(user, USER_KEYS, what);
  check(user.username === want.username, `${what}: username ${user.username} != ${want.username}`);
  check(user.email === want.email, `${what}: email ${user.email} != ${want.email}`);
  check(user.role === "user", `${what}: role ${user.role}`);
  check(!user.disabled, `${what}: disabled`);
}
function checkTokens(tokens: TokenResponse, response: Response, what: string): void {
  // `scope` is optional in the document; the rest is required.
  sameKeys(tokens, TOKEN_KEYS.filter((k) => k !== "scope" || k in tokens), what);
  check(tokens.token_type.toLowerCase() === "bearer", `${what}: token_type ${tokens.token_type}`);
  check(tokens.access_token.length > 0 && tokens.refresh_token.length > 0, `${what}: empty token`);
  check(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, `${what}: expires_in ${tokens.expires_in}`);
  check(/\bno-store\b/.test(response.headers.get("Cache-Control") ?? ""), `${what}: no Cache-Control: no-store`);
}
function unexpected(what: string, response: Response, error: unknown): never {
  throw new StepFailed(`${what}: HTTP ${response.status} ${JSON.stringify(error)}`);
}

let stepNo = 0;
let stepName = "start";
async function step(name: string, run: () => Promise<string>): Promise<void> {
  stepNo += 1;
  stepName = name;
  const started = performance.now();
  const detail = await run();
  const ms = (performance.now() - started).toFixed(0);
  console.log(`ok ${stepNo} ${name} (${ms} ms): ${detail}`);
}

async function main(): Promise<void> {
  const suffix = randomBytes(8).toString("hex");
  const username = `gen_client_${suffix}`;
  const email = `${username}@example.com`;
  // 12-128 characters, random, and without the username or email in it.
  const password = `Pw-${randomBytes(18).toString("base64url")}-9z`;
  let userId = "";
  let first: TokenResponse | undefined;
  let second: TokenResponse | undefined;

  await step("register POST /auth/register", async () => {
    // Bodies are declared with their generated type first: openapi-fetch's
    // inferred `body` does not reject unknown fields, a declared type does.
    const body: RegisterBody = { email, username, name: "Generated Client", password };
    const { data, error, response } = await client.POST("/auth/register", { body });
    if (data === undefined) return unexpected("register", response, error);
    check(response.status === 201, `register: HTTP ${response.status}, want 201`);
    checkUser(data, { username, email }, "register");
    userId = data.id;
    return `201 user ${data.username} id=${data.id}`;
  });

  await step("login POST /auth/token grant_type=password", async () => {
    const body: TokenForm = { grant_type: "password", username, password };
    const { data, error, response } = await client.POST("/auth/token", {
      body,
      bodySerializer: formSerializer,
      headers: FORM,
    });
    if (data === undefined) return unexpected("login", response, error);
    check(response.status === 200, `login: HTTP ${response.status}, want 200`);
    checkTokens(data, response, "login");
    first = data;
    return `200 token_type=${data.token_type} expires_in=${data.expires_in}`;
  });

  const profile = async (tokens: TokenResponse | undefined, what: string): Promise<string> => {
    check(tokens !== undefined, `${what}: no token`);
    const { data, error, response } = await client.GET("/profile", {
      headers: bearer(tokens.access_token),
    });
    if (data === undefined) return unexpected(what, response, error);
    check(response.status === 200, `${what}: HTTP ${response.status}, want 200`);
    checkUser(data, { username, email }, what);
    check(data.id === userId, `${what}: id ${data.id} != ${userId}`);
    return `200 username=${data.username}`;
  };
  await step("profile GET /profile", () => profile(first, "profile"));

  await step("refresh POST /auth/token grant_type=refresh_token", async () => {
    check(first !== undefined, "refresh: no token");
    const body: TokenForm = { grant_type: "refresh_token", refresh_token: first.refresh_token };
    const { data, error, response } = await client.POST("/auth/token", {
      body,
      bodySerializer: formSerializer,
      headers: FORM,
    });
    if (data === undefined) return unexpected("refresh", response, error);
    check(response.status === 200, `refresh: HTTP ${response.status}, want 200`);
    checkTokens(data, response, "refresh");
    check(data.access_token !== first.access_token, "refresh: same access token");
    check(data.refresh_token !== first.refresh_token, "refresh: refresh token not rotated");
    second = data;
    return "200 new access and refresh tokens";
  });

  await step("profile GET /profile (refreshed token)", () => profile(second, "profile after refresh"));

  await step("logout POST /auth/logout", async () => {
    check(second !== undefined, "logout: no token");
    const { error, response } = await client.POST("/auth/logout", {
      headers: bearer(second.access_token),
    });
    check(response.status === 204, `logout: HTTP ${response.status} ${JSON.stringify(error)}, want 204`);
    return "204";
  });

  const refused = async (tokens: TokenResponse | undefined, what: string): Promise<string> => {
    check(tokens !== undefined, `${what}: no token`);
    const { data, error, response } = await client.GET("/profile", {
      headers: bearer(tokens.access_token),
    });
    check(data === undefined && error !== undefined, `${what}: HTTP ${response.status}, want 401`);
    check(response.status === 401, `${what}: HTTP ${response.status} ${JSON.stringify(error)}, want 401`);
    // `error` is typed from the document: the Problem schema.
    check(error.status === 401, `${what}: problem status ${error.status}`);
    check(
      (response.headers.get("Content-Type") ?? "").startsWith("application/problem+json"),
      `${what}: Content-Type ${response.headers.get("Content-Type")}`,
    );
    const challenge = response.headers.get("WWW-Authenticate") ?? "";
    check(/^Bearer\b/.test(challenge), `${what}: WWW-Authenticate ${challenge}`);
    return `401 ${error.title} (WWW-Authenticate: ${challenge})`;
  };
  await step("profile GET /profile after logout", () => refused(second, "profile after logout"));
  await step("profile GET /profile with the pre-refresh token", () => refused(first, "old token after logout"));
}

main().then(
  () => console.log(`client: all ${stepNo} steps passed against ${baseUrl}`),
  (e: unknown) => {
    console.error(`FAIL ${stepNo} ${stepName}: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
