/*
 * A fake libnvidia-ml.so.1 for the test suite: the real pynvml bindings (and
 * rattler's __cuda detection) load it instead of the NVIDIA driver's library.
 *
 * Build (tests/support/fake_nvml.py does this):
 *   gcc -shared -fPIC -O2 -Wl,-soname,libnvidia-ml.so.1 -o libnvidia-ml.so.1 fake_nvml.c
 *
 * Configured by environment variables, read at nvmlInit* (and lazily by the
 * system-level getters, which some callers use before init):
 *   FAKE_NVML_DRIVER      driver version string, default "550.54.15"
 *   FAKE_NVML_CUDA        max CUDA as NVML encodes it (12040) or "12.4"; default 12040
 *   FAKE_NVML_GPUS        "NAME,CC,MEM_MIB;NAME,CC,MEM_MIB", e.g.
 *                         "NVIDIA H100 80GB HBM3,9.0,81559;NVIDIA RTX A6000,8.6,49140";
 *                         set but empty = 0 GPUs; unset = one H100
 *   FAKE_NVML_INIT_ERROR  an nvmlReturn_t value every nvmlInit* returns (9 = driver not loaded)
 *   FAKE_NVML_FAIL        "FUNCTION=CODE,FUNCTION=CODE": make those functions fail,
 *                         e.g. "nvmlSystemGetCudaDriverVersion=13" (an old driver)
 *   FAKE_NVML_TRACE=1     log each call to stderr as "fake_nvml: NAME"
 * UUIDs are deterministic: GPU-00000000-fa4e-4000-8000-<index as 12 hex digits>.
 *
 * Only what pynvml 13.x calls for detection is exported; any other symbol is
 * missing, which pynvml reports as NVMLError_FunctionNotFound.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_LIBRARY_NOT_FOUND 12
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_LIB_RM_VERSION_MISMATCH 18
#define NVML_ERROR_UNKNOWN 999

#define MAX_GPUS 16
#define MAX_FAILS 32
#define NAME_LEN 96
#define UUID_LEN 96

struct fake_device {
    int index;
    char name[NAME_LEN];
    char uuid[UUID_LEN];
    int cc_major;
    int cc_minor;
    unsigned long long memory_mib;
};
typedef struct fake_device *nvmlDevice_t;

/* Layouts as in nvml.h (and pynvml's c_nvmlMemory_t / c_nvmlMemory_v2_t). */
typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

struct fail_rule {
    char function[64];
    nvmlReturn_t code;
};

static struct fake_device devices[MAX_GPUS];
static unsigned int device_count;
static char driver_version[80];
static int cuda_version;
static nvmlReturn_t init_error;
static struct fail_rule fails[MAX_FAILS];
static int fail_count;
static int trace;
static int configured;
static int init_refcount;

static void copy_string(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src);
}

static int parse_cuda(const char *text) {
    const char *dot = strchr(text, '.');
    if (dot == NULL) return atoi(text);
    return atoi(text) * 1000 + atoi(dot + 1) * 10;
}

/* One "NAME,CC,MEM" entry, parsed from the right so a name may hold commas. */
static void parse_gpu(char *entry) {
    struct fake_device *dev;
    char *mem_sep, *cc_sep, *dot;
    if (device_count >= MAX_GPUS || entry[0] == '\0') return;
    mem_sep = strrchr(entry, ',');
    if (mem_sep == NULL) return;
    *mem_sep = '\0';
    cc_sep = strrchr(entry, ',');
    if (cc_sep == NULL) return;
    *cc_sep = '\0';
    dev = &devices[device_count];
    dev->index = (int)device_count;
    copy_string(dev->name, sizeof dev->name, entry);
    dev->cc_major = atoi(cc_sep + 1);
    dot = strchr(cc_sep + 1, '.');
    dev->cc_minor = dot ? atoi(dot + 1) : 0;
    dev->memory_mib = strtoull(mem_sep + 1, NULL, 10);
    snprintf(dev->uuid, sizeof dev->uuid, "GPU-00000000-fa4e-4000-8000-%012x", device_count);
    device_count++;
}

static void parse_gpus(const char *spec) {
    char *copy = strdup(spec), *save = NULL, *entry;
    if (copy == NULL) return;
    for (entry = strtok_r(copy, ";", &save); entry; entry = strtok_r(NULL, ";", &save))
        parse_gpu(entry);
    free(copy);
}

static void parse_fails(const char *spec) {
    char *copy = strdup(spec), *save = NULL, *entry, *eq;
    if (copy == NULL) return;
    for (entry = strtok_r(copy, ",", &save); entry && fail_count < MAX_FAILS;
         entry = strtok_r(NULL, ",", &save)) {
        eq = strchr(entry, '=');
        if (eq == NULL) continue;
        *eq = '\0';
        copy_string(fails[fail_count].function, sizeof fails[fail_count].function, entry);
        fails[fail_count].code = atoi(eq + 1);
        fail_count++;
    }
    free(copy);
}

static void configure(void) {
    const char *value;
    device_count = 0;
    fail_count = 0;
    memset(devices, 0, sizeof devices);
    value = getenv("FAKE_NVML_DRIVER");
    copy_string(driver_version, sizeof driver_version, value ? value : "550.54.15");
    value = getenv("FAKE_NVML_CUDA");
    cuda_version = value ? parse_cuda(value) : 12040;
    value = getenv("FAKE_NVML_GPUS");
    parse_gpus(value ? value : "NVIDIA H100 80GB HBM3,9.0,81559");
    value = getenv("FAKE_NVML_INIT_ERROR");
    init_error = (value && *value) ? atoi(value) : NVML_SUCCESS;
    value = getenv("FAKE_NVML_FAIL");
    if (value) parse_fails(value);
    value = getenv("FAKE_NVML_TRACE");
    trace = value && strcmp(value, "1") == 0;
    configured = 1;
}

/* Every exported function starts here: configure, trace, apply FAKE_NVML_FAIL. */
static nvmlReturn_t enter(const char *function) {
    int i;
    if (!configured) configure();
    if (trace) fprintf(stderr, "fake_nvml: %s\n", function);
    for (i = 0; i < fail_count; i++)
        if (strcmp(fails[i].function, function) == 0) return fails[i].code;
    return NVML_SUCCESS;
}

#define ENTER()                                  \
    do {                                         \
        nvmlReturn_t injected_ = enter(__func__); \
        if (injected_ != NVML_SUCCESS) return injected_; \
    } while (0)

#define REQUIRE_INIT()                                       \
    do {                                                     \
        if (init_refcount <= 0) return NVML_ERROR_UNINITIALIZED; \
    } while (0)

static nvmlReturn_t do_init(const char *function) {
    nvmlReturn_t injected;
    configure(); /* re-read the environment on every init */
    injected = enter(function);
    if (injected != NVML_SUCCESS) return injected;
    if (init_error != NVML_SUCCESS) return init_error;
    init_refcount++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit(void) { return do_init(__func__); }
nvmlReturn_t nvmlInit_v2(void) { return do_init(__func__); }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return do_init(__func__);
}

nvmlReturn_t nvmlShutdown(void) {
    ENTER();
    REQUIRE_INIT();
    init_refcount--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    if (!configured) configure();
    if (trace) fprintf(stderr, "fake_nvml: %s\n", __func__);
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    default: return "Unknown Error";
    }
}

static nvmlReturn_t copy_out(char *buffer, unsigned int length, const char *text) {
    if (buffer == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buffer, text, strlen(text) + 1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    ENTER();
    return copy_out(version, length, driver_version);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    char text[96];
    ENTER();
    /* NVML's own version is "<cuda major>.<driver version>", e.g. "12.550.54.15". */
    snprintf(text, sizeof text, "%d.%s", cuda_version / 1000, driver_version);
    return copy_out(version, length, text);
}

static nvmlReturn_t get_cuda(int *value) {
    if (value == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *value = cuda_version;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion) {
    ENTER();
    return get_cuda(cudaDriverVersion);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion) {
    ENTER();
    return get_cuda(cudaDriverVersion);
}

static nvmlReturn_t get_count(unsigned int *count) {
    REQUIRE_INIT();
    if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *count = device_count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount) {
    ENTER();
    return get_count(deviceCount);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
    ENTER();
    return get_count(deviceCount);
}

static nvmlReturn_t get_handle(unsigned int index, nvmlDevice_t *device) {
    REQUIRE_INIT();
    if (device == NULL || index >= device_count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    ENTER();
    return get_handle(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    ENTER();
    return get_handle(index, device);
}

/* A handle is valid only if it points at one of our configured devices. */
static int valid(nvmlDevice_t device) {
    return device != NULL && device >= devices && device < devices + device_count;
}

#define REQUIRE_DEVICE(device)                                \
    do {                                                      \
        REQUIRE_INIT();                                       \
        if (!valid(device)) return NVML_ERROR_INVALID_ARGUMENT; \
    } while (0)

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    ENTER();
    REQUIRE_DEVICE(device);
    return copy_out(name, length, device->name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    ENTER();
    REQUIRE_DEVICE(device);
    return copy_out(uuid, length, device->uuid);
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    ENTER();
    REQUIRE_DEVICE(device);
    if (major == NULL || minor == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *major = device->cc_major;
    *minor = device->cc_minor;
    return NVML_SUCCESS;
}

/* A fixed 4 MiB "used" keeps free/used plausible without more configuration. */
#define USED_BYTES (4ULL * 1024 * 1024)

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    unsigned long long total;
    ENTER();
    REQUIRE_DEVICE(device);
    if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    total = device->memory_mib * 1024ULL * 1024ULL;
    memory->total = total;
    memory->used = total >= USED_BYTES ? USED_BYTES : total;
    memory->free = total - memory->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    unsigned long long total;
    ENTER();
    REQUIRE_DEVICE(device);
    if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    total = device->memory_mib * 1024ULL * 1024ULL;
    memory->total = total;
    memory->reserved = 0;
    memory->used = total >= USED_BYTES ? USED_BYTES : total;
    memory->free = total - memory->used;
    return NVML_SUCCESS;
}
