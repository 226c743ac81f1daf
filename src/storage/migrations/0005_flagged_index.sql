-- The dashboard's lists of recent anomalies (any detector, or one of them) read these partial
-- indexes in time order instead of filtering the raw readings: they hold only the flagged
-- readings (about a tenth), so they cost ingest little. The second serves a location and sensor
-- type filter, where the first would pass over the other 24 series' anomalies.
CREATE INDEX sensor_readings_flagged ON sensor_readings (timestamp)
  WHERE rule_anomaly OR z_anomaly OR ml_anomaly OR combined_anomaly;
CREATE INDEX sensor_readings_flagged_series ON sensor_readings (location, sensor_type, timestamp)
  WHERE rule_anomaly OR z_anomaly OR ml_anomaly OR combined_anomaly;
