// Clang thread-safety annotations, in the style of leveldb's port/thread_annotations.h.
//
// Every mutex-protected member says which mutex guards it (GUARDED_BY), every function that
// expects a lock held says so (REQUIRES), and the lock order is declared with
// ACQUIRED_BEFORE/ACQUIRED_AFTER where both locks are visible. A clang build with
// -Wthread-safety (scripts/test.sh runs one) then rejects an access without its lock. Under
// GCC the macros expand to nothing. The lockable types that carry these annotations are in
// store/mutex.h: std::mutex and std::lock_guard are invisible to the analysis.
#ifndef ZBUDFS_STORE_THREAD_ANNOTATIONS_H_
#define ZBUDFS_STORE_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define ZBUDFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ZBUDFS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) ZBUDFS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY ZBUDFS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) ZBUDFS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) ZBUDFS_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) ZBUDFS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) ZBUDFS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) ZBUDFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) ZBUDFS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) ZBUDFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) ZBUDFS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) ZBUDFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) ZBUDFS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) ZBUDFS_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) ZBUDFS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) ZBUDFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) ZBUDFS_THREAD_ANNOTATION(assert_capability(x))
#define ASSERT_SHARED_CAPABILITY(x) ZBUDFS_THREAD_ANNOTATION(assert_shared_capability(x))
#define RETURN_CAPABILITY(x) ZBUDFS_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS ZBUDFS_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // ZBUDFS_STORE_THREAD_ANNOTATIONS_H_
