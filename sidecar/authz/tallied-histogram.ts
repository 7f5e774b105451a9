// A Prometheus histogram for the Check hot path: each label pair gets a series handle that counts
// an observation in a plain array (no label hashing, no allocation), and the registry reads the
// series in prom-client's own export shape at scrape time. prom-client's Histogram hashes its label
// object into a string key on every observe(), even through a bound child, which is measurable at
// the sidecar's rates (docs/sidecar-contract.md, "Performance").
import { Histogram, type HistogramConfiguration, type MetricType, type LabelValues, type MetricObjectWithValues, type MetricValueWithName } from "prom-client";

// prom-client types the metric type as a numeric enum it does not export; at run time it is this string.
const HISTOGRAM = "histogram" as unknown as MetricType;

/** One labelled series: observe(seconds) adds to its buckets, sum and count. */
export interface HistogramSeries {
  observe(value: number): void;
}

class Series implements HistogramSeries {
  /** Non-cumulative counts per upper bound; the last slot counts values above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class TalliedHistogram<T extends string> extends Histogram<T> {
  private readonly bounds: readonly number[];
  private readonly names: readonly [T, T];
  private readonly metricName: string;
  private readonly helpText: string;
  /** First label value → second label value → series. */
  private readonly tallies = new Map<string, Map<string, Series>>();
  /** Every series in the order it was first used: the order prom-client exports them in. */
  private readonly order: Series[] = [];

  constructor(config: HistogramConfiguration<T> & { readonly labelNames: readonly [T, T]; readonly buckets: readonly number[] }) {
    super(config);
    this.names = config.labelNames;
    this.metricName = config.name;
    this.helpText = config.help;
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    // Histogram's constructor sets observe as an own property; labelled observations go to the tallies too.
    (this as unknown as { observe: (labels: LabelValues<T>, value: number) => void }).observe = (labels, value) => {
      if (typeof labels !== "object" || labels === null) throw new Error(`${config.name} needs its labels ${config.labelNames.join(", ")}`);
      this.series(String(labels[this.names[0]] ?? ""), String(labels[this.names[1]] ?? "")).observe(value);
    };
  }

  /** The series for one pair of label values; keep the handle, it stays valid until reset(). */
  series(a: string, b: string): HistogramSeries {
    let byB = this.tallies.get(a);
    if (!byB) this.tallies.set(a, (byB = new Map()));
    let s = byB.get(b);
    if (!s) {
      s = new Series(this.bounds, { [this.names[0]]: a, [this.names[1]]: b });
      byB.set(b, s);
      this.order.push(s);
    }
    return s;
  }

  override reset(): void {
    // Also called by prom-client's constructor, before this class's fields exist.
    (this.tallies as Map<string, Map<string, Series>> | undefined)?.clear();
    if (this.order) this.order.length = 0;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    return this.exported(false);
  }

  // What Registry.metrics() reads for the text format: `le` first and the series labels as shared
  // labels, as prom-client's Histogram hands them over, so the exposition is byte for byte the same.
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    return this.exported(true);
  }

  private exported(text: boolean): MetricObjectWithValues<MetricValueWithName<T>> {
    const values: MetricValueWithName<T>[] = [];
    const bucket = `${this.metricName}_bucket`;
    const value = (metricName: string, labels: Record<string, string | number>, shared: Readonly<Record<string, string>>, v: number) =>
      values.push(
        (text ? { metricName, labels, sharedLabels: shared, value: v } : { metricName, labels: { ...labels, ...shared }, value: v }) as MetricValueWithName<T>,
      );
    for (const s of this.order) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        value(bucket, { le }, s.labels, acc);
      });
      value(bucket, { le: "+Inf" }, s.labels, s.count);
      value(`${this.metricName}_sum`, {}, s.labels, s.sum);
      value(`${this.metricName}_count`, {}, s.labels, s.count);
    }
    // The shape prom-client's own get() returns (its typings also list `collect`, which it leaves out).
    return { name: this.metricName, help: this.helpText, type: HISTOGRAM, values, aggregator: "sum" } as unknown as MetricObjectWithValues<MetricValueWithName<T>>;
  }
}
