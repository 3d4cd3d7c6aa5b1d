// NextRequest and NextResponse as a Next.js route handler sees them: the Web platform's
// Request and Response (the parts the seed's webhook route uses).
export class NextRequest extends Request {}
export class NextResponse extends Response {
  static json(body, init) {
    return new NextResponse(JSON.stringify(body), {
      ...init,
      headers: { "content-type": "application/json", ...(init?.headers ?? {}) },
    });
  }
}
