// The type tests/stack/test_dashboards.py checks every generated dashboard against: the
// `Dashboard` type of @grafana/schema, in JSON. The generated file is
// `export const dashboard = <the JSON> satisfies Checked;` plus `const published: Published = dashboard;`.
import type { AnnotationQuery, Dashboard, DataQuery } from '@grafana/schema';

/** A value of T as JSON holds it: a TypeScript string enum is its values (JSON cannot name an enum). */
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

/**
 * What Grafana's Prometheus datasource reads from an annotation besides the schema's fields
 * (packages/grafana-prometheus/src/annotations.ts): the query in `target`, the title, text and tag
 * formats. Grafana's dashboard schema leaves annotation queries open to their datasource's fields.
 */
interface PrometheusAnnotation {
  target: DataQuery & { expr: string; range?: boolean; instant?: boolean };
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

/** Dashboard, with no field it does not know (object literals get excess-property checks). */
export type Checked = Json<
  Omit<Dashboard, 'annotations'> & { annotations?: { list?: Array<AnnotationQuery & PrometheusAnnotation> } }
>;
/** The published type itself: what is Checked must also be assignable to it. */
export type Published = Json<Dashboard>;
