/*
 * fastcdc_scan.c -- FastCDC (2020 paper, normalized chunking) cut-point kernel.
 *
 * Concern: find cut points fast; nothing else.  chunker/reference.py is the
 * executable spec and the tests hold this file to it.
 *
 * The rolling fingerprint is the gear hash fp = (fp << 1) + gear[byte]
 * (mod 2^64), reset to 0 at each chunk start and fed from offset min_size on
 * (cut-point skipping).  After absorbing the byte at offset i the chunk may
 * end there (length i + 1) if (fp & mask) == 0, with mask = mask_s while
 * i < normal_size and mask_l afterwards.  Because of the shift, fp only
 * depends on the last 64 bytes absorbed.
 */
#include "fastcdc_scan.h"

/*
 * Generated once by splitmix64 with initial state 0x636173676c616e63
 * (ASCII "casglanc"): 256 successive outputs.  chunker/reference.py holds
 * the same literal table and a test checks both against each other and
 * against the generator.  Never change it: cuts would move and new uploads
 * would stop deduplicating against everything stored.
 *
 * static so the kernel addresses it directly rather than through the
 * shared library's GOT; the binding reads it via fastcdc_gear_table().
 */
static const uint64_t fastcdc_gear[256] = {
    0xd4bdf2177167bdadULL, 0x38e97d0b1667db8cULL, 0x1644eb59a9746806ULL, 0xd997f2b7c6fc4355ULL,
    0x487baa27c5bb7785ULL, 0xe5853d0bcba2f56fULL, 0xc5af51cfb70489abULL, 0x01c45a9363964182ULL,
    0xcaf0f86199174630ULL, 0x862761df789dff57ULL, 0x700412393e16a01cULL, 0x2ed8be00560c3dc5ULL,
    0x153e2f000c911ba3ULL, 0x666e6fdbc9c90454ULL, 0xef47e844853cb742ULL, 0x587777b998eac6ebULL,
    0xa233edaacc73f2ddULL, 0xe15aea3eef80f14eULL, 0xaf2e1c63ca73ab90ULL, 0xaeaf299a5d12d474ULL,
    0x8792603f22162f41ULL, 0x2535d5cf7d6bffc8ULL, 0x6322ace1415ea943ULL, 0x9cb16fcbe8fb7039ULL,
    0x8f84bcd846326279ULL, 0xe77a6b8d130c897eULL, 0xa3461cb68e681358ULL, 0x1faf1f5ab14c313fULL,
    0xb53deeaf004024a4ULL, 0xab03afa036cb24acULL, 0x849a66b5e7b59046ULL, 0xd95aa21bd951ebd7ULL,
    0xd6422bc9aafaa005ULL, 0x31ddf38bfac92d23ULL, 0x505a062475fb5fa7ULL, 0x1d0b235712e9e1f1ULL,
    0x0265293cc027ee97ULL, 0x488ea366534e8a20ULL, 0xe5c180077e23f366ULL, 0x839ed62493ae77c5ULL,
    0x0d41ee058204cea2ULL, 0xe234e3632310d06aULL, 0xa4650455684bbb7eULL, 0x921eefacb5e2bcc5ULL,
    0x095cd70595191d62ULL, 0x730a86b27e6a4e76ULL, 0x031a355efd4275b0ULL, 0x5c8bd3c1fb420f80ULL,
    0x2b03439af22325daULL, 0x064df534675a6c52ULL, 0x9e129b4b68398985ULL, 0x4f6be3e2a9a8afc2ULL,
    0x01ec36f3a97dffc6ULL, 0x50d9d376a494d3b0ULL, 0x2008d458ea6eb6d3ULL, 0x8e3886df45c11b3cULL,
    0x1ed6abc389ec8408ULL, 0x2354a30fbf0d1850ULL, 0xd8a429b36be07fa2ULL, 0x0f4dd1c05239bfd3ULL,
    0xc704a2e3108ee721ULL, 0x8d5a5ef8f8cbe42aULL, 0xad2c944ebba876b2ULL, 0xb1b931689969dbc0ULL,
    0xe077fbc57e8a2d17ULL, 0x6dec6d6d0e5e5365ULL, 0xf16d591e56f0fad6ULL, 0x389773446e57ec4bULL,
    0x576d0e4ed6ce14fdULL, 0x8529751b68cdb2caULL, 0x26fe33624ea12bb4ULL, 0xd83f67e679bd7705ULL,
    0x521a30853fa5b272ULL, 0x4eb7311b7baa1b2aULL, 0xc49dd23debc25f23ULL, 0xfa8b81ba84d52684ULL,
    0x2d111852adeb234fULL, 0x54a087cce6ad2c52ULL, 0x362501035fd21c1dULL, 0x727dc42fc61635e4ULL,
    0x59759e4507ffacd0ULL, 0xe79576593b0a3a2cULL, 0x21395426897c856dULL, 0x9e66e241d8162877ULL,
    0xc9f83dcd25156b78ULL, 0xb27395f2e48c6d9dULL, 0xf150742d21b3d97dULL, 0x14964d66bc8f1f15ULL,
    0x91bc88d1fac795ffULL, 0xe96801abe7693090ULL, 0x90ac9a5086a0ff0dULL, 0xa4d5b1ab966e6607ULL,
    0x5ee386a770251a84ULL, 0x68c6e531cc974b48ULL, 0x6fa2eaf77d7ce91bULL, 0x74e9e79ce483228dULL,
    0xdb89f47e51a15b91ULL, 0xb223543a4cf37b57ULL, 0xdc10b806b9cd84d6ULL, 0x718f1a194643bc8fULL,
    0x0568ffc7819fe9acULL, 0xb15d784888e68099ULL, 0x2ee560459116bceaULL, 0x5bce5cfbb69749b5ULL,
    0xb077e93d5f31cc9fULL, 0x8d3bf7da8c5eac27ULL, 0xffc89d9c0234a0f9ULL, 0x7644faaa507fc484ULL,
    0xa3af4db3f733b4d0ULL, 0xedecd4b92cd654c4ULL, 0x753e35d2c63d4498ULL, 0x3616572a69493141ULL,
    0x77e0ed79a25b6690ULL, 0x0a8863892f2eb670ULL, 0x30705a9055a38afaULL, 0x2bf4f95c08fce2f2ULL,
    0x7c3bf45462dd9e03ULL, 0x16e5934ffbddd79cULL, 0x98c7df93e5461ccdULL, 0x97b1e12439bc4922ULL,
    0x86e4b54421a135b2ULL, 0x50829a79f1901922ULL, 0x28da4539a9521b80ULL, 0x2afd2e04dda3cf63ULL,
    0x797add7cae6b0f99ULL, 0xc779c88a7bda494cULL, 0xc25b71ec96629ab3ULL, 0x8c29d0dff0fef6eaULL,
    0xb73bcaffd5e70f90ULL, 0xe353790d700d19a2ULL, 0x802312346870a773ULL, 0x498a7f638b4c3766ULL,
    0x376c9f0c18db48feULL, 0xca832d3cf2021174ULL, 0x238d177e14b2c13eULL, 0x6868e6407f32fd3cULL,
    0x9ce40be27c35a413ULL, 0x9a6c3446a00f15eaULL, 0xc37cd14ee7ca13a4ULL, 0x63f1fc7bec089eddULL,
    0xe1c2bc157bf06ac3ULL, 0xdfe8f19149e2b1cfULL, 0xeb9c6b9c63d8da07ULL, 0x953bf9a5d7b8eaf9ULL,
    0x42b471e59640290dULL, 0xbc4e71281082961dULL, 0x247e2a4c73d3d7f9ULL, 0xe209b3f7f96581e0ULL,
    0x35775355ca7048e8ULL, 0xd5e78ccf48cb2e39ULL, 0x0152efaef6ba5ee0ULL, 0x506e3696d8953406ULL,
    0x3b9ca96b7ab604ddULL, 0x2c8b2bf2c5cb51eeULL, 0x3d91f1beaf5ed30fULL, 0x912518581b5f2cdaULL,
    0x95ca520e8272052fULL, 0x2aa09c229b07882aULL, 0x22da711ecb3ecd4aULL, 0x964f1b8a6be29a09ULL,
    0xb533787ec4cabcd4ULL, 0xe1201a035fd196d3ULL, 0x1b2141e4698eba46ULL, 0x0fad29eb70340843ULL,
    0xf86361ac0baf263eULL, 0x1bf381588ce31391ULL, 0x65befc97e34aa099ULL, 0xc363f92d203fada3ULL,
    0x01a50520c53a74eaULL, 0x2273de2a3d3f6171ULL, 0xe276c7530df66216ULL, 0x372a1477f1660b45ULL,
    0x40db80f2187b4c90ULL, 0xc0e0da137c862021ULL, 0x66b4c86c8596ab38ULL, 0x38b8a92acc8f4503ULL,
    0xf8cd517e4c9f85d0ULL, 0xd01be8c5bc5e2b63ULL, 0x6026ccac21cbdbebULL, 0xb28feec03a6088a9ULL,
    0x158382643b3d753eULL, 0x928d662829859397ULL, 0x93fb5a47273e9a5eULL, 0xbb526097325b829bULL,
    0x26c192b8261897aeULL, 0x4a1a61c21698681dULL, 0x63c5948c41901185ULL, 0xb340495d49f66482ULL,
    0xd3e47ac1827ebfb1ULL, 0xbf8984162cb95199ULL, 0x4cd0185715b99705ULL, 0x235c416fd17b0a5fULL,
    0xd0f0f665ec9b568fULL, 0x3c824c3452f39275ULL, 0xaced7564032ee8baULL, 0x4292b73aaf23f3f9ULL,
    0x6a00b09b6f0f0320ULL, 0x93c2a959fc3ebe19ULL, 0xe40beabf669c4e3dULL, 0xf41c96c54f1354ebULL,
    0x58d13b3ecb2aeed0ULL, 0xc04a172e90857f9bULL, 0xaa9ac8c2797b6921ULL, 0x296f873dc15bfa38ULL,
    0x4255d5adbde44d64ULL, 0x83d7280926e5b135ULL, 0xfe7803521f3696b1ULL, 0x640333a6b6bb4195ULL,
    0xca95a514813a8a7fULL, 0x7e32a6413b49503dULL, 0xe3f30101924f52ffULL, 0xfdc8dc09ba11d465ULL,
    0xeb8693819df7a497ULL, 0xcc4ce19ae3e6f4e3ULL, 0xa272399b2b01413bULL, 0xc9781ffb34dcc9b8ULL,
    0x54ffb01056f35c7bULL, 0x871a40e4fd0af9afULL, 0x5d2c4406f6653ce5ULL, 0x04c590857a011fb8ULL,
    0xcce3e58ab504f09bULL, 0x672e7d64e3dc4c13ULL, 0xa16d17c82e6d83ccULL, 0xe0f8f3b9d006cca9ULL,
    0x7c4ee6b0434c29f1ULL, 0x2a077d9f8b909c01ULL, 0xf315d9c2f64d0b6dULL, 0x5c4c87cdfd02b088ULL,
    0x2fe31ea603f14ed5ULL, 0xcbb2033a8c81d148ULL, 0x4f50b69afd9dbec7ULL, 0xdafc1947eaf6a730ULL,
    0x1735c6156c19ff8eULL, 0x91ccd36f05e5b37cULL, 0x881ae5b1678a80e3ULL, 0x20abaf3e203580c8ULL,
    0xce1a44f0cf5aa75cULL, 0xd3349b6f1b9e02adULL, 0x0240bdbb742b4a60ULL, 0xf3f26efdeba9958fULL,
    0xba828fbfeac74d26ULL, 0x32744ec4e10242c2ULL, 0xb0efd6213260817aULL, 0xd2080e448dd079bfULL,
    0x1a99f5e78b6951e3ULL, 0xc6aea3adc5a7376eULL, 0x0f380f81f9411070ULL, 0xfbbc341ed3a61409ULL,
    0x34a572bc4d392e0dULL, 0xcd396bc9d5e00a96ULL, 0x3a507a7b4e782666ULL, 0x97e8ea29ddb2ed2bULL,
    0x4a83cfab2ab69f01ULL, 0xe401d3f7c9260b84ULL, 0xc4f993b77766faeeULL, 0xfbb979d11ebd1a21ULL,
};

const uint64_t *fastcdc_gear_table(void)
{
    return fastcdc_gear;
}

/*
 * Absorb the three bytes at p[0..2] into fp.  If one of them ends the chunk,
 * store its fingerprint in *fpp and return its offset (base + 0..2) from the
 * enclosing function; otherwise leave the new fingerprint in fp.
 *
 * Why three bytes per step: the plain loop is one dependency chain (shift,
 * add) per byte.  Here g0..g2 are first combined among themselves (t2, t3 do
 * not depend on fp), and each fingerprint is fp shifted by 1, 2 or 3 plus one
 * of them -- a single x86 lea each -- so the chain through fp is one lea per
 * three bytes and the rest overlaps.  The values are exactly those of the
 * one-byte loop (mod 2^64), so the cuts are identical.  This is the FastCDC
 * paper's "roll two bytes" idea, widened; three beat two and four when
 * measured (a shift by 4 no longer fits in one lea).
 */
#define STEP3(p, base)                                                   \
    do {                                                                 \
        uint64_t g0 = gear[(p)[0]], g1 = gear[(p)[1]], g2 = gear[(p)[2]]; \
        uint64_t t2 = (g0 << 1) + g1, t3 = (t2 << 1) + g2;               \
        uint64_t h1 = (fp << 1) + g0, h2 = (fp << 2) + t2;               \
        fp = (fp << 3) + t3;                                             \
        if (!(h1 & mask)) { *fpp = h1; return (base); }                  \
        if (!(h2 & mask)) { *fpp = h2; return (base) + 1; }              \
        if (!(fp & mask)) { *fpp = fp; return (base) + 2; }              \
    } while (0)

/*
 * Feed bytes buf[i..end) into *fpp and return the offset of the first byte
 * after which (fp & mask) == 0, or end if there is none.  Nine bytes (three
 * steps) per loop iteration keep the loop's own bookkeeping small.
 */
static inline size_t scan_region(const uint8_t *buf, size_t i, size_t end,
                                 uint64_t *fpp, uint64_t mask)
{
    const uint64_t *gear = fastcdc_gear;
    uint64_t fp = *fpp;

    for (; end - i >= 9; i += 9) {
        STEP3(buf + i, i);
        STEP3(buf + i + 3, i + 3);
        STEP3(buf + i + 6, i + 6);
    }
    for (; i < end; i++) {
        fp = (fp << 1) + gear[buf[i]];
        if (!(fp & mask))
            break;
    }
    *fpp = fp;
    return i;
}

/*
 * The cut rule.  Kept static and wrapped by the exported fastcdc_next_cut so
 * that fastcdc_cut_all calls it directly: in a shared library (-fPIC) a call
 * to an exported function may be interposed, so the compiler would neither
 * inline nor specialise it, which measured ~20% slower.
 */
static size_t next_cut(const uint8_t *buf, size_t len, const fastcdc_params *p)
{
    size_t n, normal, i;
    uint64_t fp = 0;

    if (len <= p->min_size)
        return len;
    /* Only the first max_size bytes may influence the cut. */
    n = len < p->max_size ? len : p->max_size;
    normal = p->normal_size < n ? p->normal_size : n;
    i = p->min_size;
    if (i < normal) {
        i = scan_region(buf, i, normal, &fp, p->mask_s);
        if (i < normal)
            return i + 1;
    }
    if (i < n) {
        i = scan_region(buf, i, n, &fp, p->mask_l);
        if (i < n)
            return i + 1;
    }
    return n;
}

size_t fastcdc_next_cut(const uint8_t *buf, size_t len, const fastcdc_params *p)
{
    return next_cut(buf, len, p);
}

size_t fastcdc_cut_all(const uint8_t *buf, size_t len, const fastcdc_params *p,
                       int final, size_t *lengths, size_t cap, size_t *consumed)
{
    size_t pos = 0, count = 0;

    while (count < cap && pos < len && (final || len - pos >= p->max_size)) {
        size_t cut = next_cut(buf + pos, len - pos, p);
        lengths[count++] = cut;
        pos += cut;
    }
    *consumed = pos;
    return count;
}
