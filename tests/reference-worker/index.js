// The hot path's reference (see wrangler.toml): what GET /hello/{user} costs when the
// Worker does nothing but route to the user's Durable Object, which reads one key.

const json = (status, body) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });

export class User {
  constructor(state) {
    this.storage = state.storage;
  }

  async fetch(request) {
    if (request.method === "PUT") {
      await this.storage.put("dateOfBirth", await request.text());
      return new Response(null, { status: 204 });
    }
    const dob = await this.storage.get("dateOfBirth");
    return dob === undefined ? new Response(null, { status: 404 }) : new Response(dob);
  }
}

function daysUntil(dob, today) {
  const [, m, d] = dob.split("-").map(Number);
  let next = Date.UTC(today.getUTCFullYear(), m - 1, d);
  const midnight = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  if (next < midnight) next = Date.UTC(today.getUTCFullYear() + 1, m - 1, d);
  return Math.round((next - midnight) / 86400000);
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz") return json(200, { status: "ok" });
    const user = /^\/hello\/([a-z]+)$/.exec(pathname)?.[1];
    if (!user) return json(404, { error: { code: "not_found", message: "No such route." } });
    const stub = env.USERS.get(env.USERS.idFromName(user));
    if (request.method === "PUT") {
      const { dateOfBirth } = await request.json();
      await stub.fetch("https://user/", { method: "PUT", body: dateOfBirth });
      return new Response(null, { status: 204 });
    }
    const answer = await stub.fetch("https://user/");
    if (answer.status === 404) {
      return json(404, { error: { code: "user_not_found", message: "No such user." } });
    }
    const days = daysUntil(await answer.text(), new Date());
    return json(200, {
      message:
        days === 0
          ? `Hello, ${user}! Happy birthday!`
          : `Hello, ${user}! Your birthday is in ${days} day(s)`,
    });
  },
};
