package io.iotmonitor.flink;

import org.apache.flink.table.functions.AggregateFunction;

/**
 * iot_stddev_pop(value): population standard deviation by Welford's update and Chan's merge, the
 * accumulator the worker keeps (src/windowing/accumulator.ts). Flink's STDDEV_POP is rewritten by
 * the planner into sums of squares (SQRT((SUM(x*x) - SUM(x)*SUM(x)/COUNT(x)) / COUNT(x))), which
 * cancels catastrophically for readings far from zero with little spread (pressure around
 * 1013 hPa) and is not 0 for a window of equal values (a stuck sensor).
 */
public final class StddevPop extends AggregateFunction<Double, StddevPop.Acc> {
  /** Count, running mean and sum of squared deviations. */
  public static final class Acc {
    public long count;
    public double mean;
    public double m2;
  }

  @Override
  public Acc createAccumulator() {
    return new Acc();
  }

  public void accumulate(Acc acc, Double value) {
    if (value == null) return;
    long n = acc.count + 1;
    double d = value - acc.mean;
    acc.mean += d / n;
    acc.m2 += d * (value - acc.mean);
    acc.count = n;
  }

  public void merge(Acc acc, Iterable<Acc> others) {
    for (Acc b : others) {
      if (b.count == 0) continue;
      if (acc.count == 0) {
        acc.count = b.count;
        acc.mean = b.mean;
        acc.m2 = b.m2;
        continue;
      }
      long n = acc.count + b.count;
      double d = b.mean - acc.mean;
      acc.m2 = acc.m2 + b.m2 + d * d * ((double) acc.count * b.count / n);
      acc.mean = acc.mean + d * ((double) b.count / n);
      acc.count = n;
    }
  }

  public void resetAccumulator(Acc acc) {
    acc.count = 0;
    acc.mean = 0;
    acc.m2 = 0;
  }

  @Override
  public Double getValue(Acc acc) {
    return acc.count == 0 ? null : Math.sqrt(Math.max(0, acc.m2) / acc.count);
  }
}
