# One date format in both interface languages (issue 12): what Django shows for a date or a
# time in the admin's lists and pages. Input formats stay Django's, so forms read as before.
# The same formats are in strategies/formatting.py for text written outside templates.
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "m-d"
YEAR_MONTH_FORMAT = "Y-m"
