export declare class NextRequest extends Request {}
export declare class NextResponse extends Response {
  static json(body: unknown, init?: ResponseInit): NextResponse;
}
