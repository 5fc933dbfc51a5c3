/* empty.c: keeps the support library non-empty. */
typedef int joey_test_support_empty;
