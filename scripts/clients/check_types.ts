// Compiled with `tsc --noEmit` against the types openapi-typescript generated from iotc-api's
// OpenAPI document (3.1 and 3.0): a client's code that uses them must type-check.
import type { components, paths } from "./api";

type Sensor = components["schemas"]["EnOceanSensor"];
type DeviceList = paths["/devices"]["get"]["responses"][200]["content"]["application/json"];
type GatewayStats =
  paths["/gateways/metadata/statistics/telegrams"]["get"]["responses"][200]["content"]["application/json"];
type Restore = paths["/backup"]["post"]["requestBody"];

// openapi-typescript makes fields with a default required (its defaultNonNullable option).
const sensor: Sensor = {
  eep: "A5-04-05",
  friendlyID: "Room Panel 02",
  sourceEurid: "a1b2c3d4",
  location: "Level 2",
  activeFlag: true,
  isPTM: false,
  customTag: "",
};
// GET /devices answers one device or a list of them.
const one: DeviceList = sensor;
const all: DeviceList = [sensor];
const none: GatewayStats = [];
const restore: NonNullable<Restore>["content"]["application/json"] = {
  APIVersion: "1.2.0",
  ExportDate: "2022-05-18T09:25:33",
  Connections: [{ eep: "a5-04-05", friendlyID: "x", sourceEurid: "A1B2C3D4", activeFlag: "true" }],
};
export const used = [one, all, none, restore];
