// Named aliases of the generated schema types, so features import `User` rather than the
// `components["schemas"]` path. Nothing here is written by hand: every type comes from
// schema.d.ts, which `npm run gen:api` generates from ../openapi.yaml.
import type { components } from "./schema";

type Schemas = components["schemas"];
export type User = Schemas["User"];
export type Message = Schemas["Message"];
export type Contact = Schemas["Contact"];
export type Room = Schemas["Room"];
export type MessagePage = Schemas["MessagePage"];
export type ErrorBody = Schemas["ErrorBody"];
export type AuthResponse = Schemas["AuthResponse"];
/** A file stored by `POST /api/uploads`; in a message, an attachment (the same object). */
export type Upload = Schemas["Upload"];
export type Attachment = Upload;
