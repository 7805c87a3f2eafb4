"""Reports for auditors and the city: the monthly handling-status report and certificates."""
