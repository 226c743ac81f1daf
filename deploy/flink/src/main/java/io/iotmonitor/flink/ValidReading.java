package io.iotmonitor.flink;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * iot_valid_reading(sensor_id, sensor_type, location, value, unit, anomaly_type): the field rules of
 * the wire schema (src/domain/wire.ts, WireReadingSchema) that Flink's JSON format does not check:
 * required names of 1-128 / 1-64 / 1-128 characters without control characters, a finite value,
 * and optional unit (32) and anomaly_type (32) without control characters.
 */
public final class ValidReading extends ScalarFunction {
  public boolean eval(String sensorId, String sensorType, String location, Double value, String unit, String anomalyType) {
    return value != null && Double.isFinite(value)
        && name(sensorId, 1, 128) && name(sensorType, 1, 64) && name(location, 1, 128)
        && (unit == null || name(unit, 0, 32)) && (anomalyType == null || name(anomalyType, 0, 32));
  }

  /** Length in UTF-16 units, as JSON Schema's maxLength counts in JavaScript (ajv counts code points: close enough for names). */
  private static boolean name(String s, int min, int max) {
    if (s == null) return false;
    int n = s.codePointCount(0, s.length());
    if (n < min || n > max) return false;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
  }
}
