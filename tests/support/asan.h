/*
 * asan.h: ASAN is 1 in a test built with AddressSanitizer (gcc's __SANITIZE_ADDRESS__ or
 * clang's feature test), so that checks of glibc's own heap, which ASan replaces, run only
 * in the release build.
 */
#ifndef VMPOOL_TEST_ASAN_H
#define VMPOOL_TEST_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif

#endif
