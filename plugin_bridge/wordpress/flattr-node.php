<?php
/**
 * Plugin Name: flattr-node
 * Description: Flattr buttons from your own flattr-node: a [flattr] shortcode, a button under every post, rel="payment" links in the head and feeds, and the node as a trusted oEmbed provider.
 * Version: 0.2.0
 * Requires at least: 5.9
 * Requires PHP: 7.4
 * License: MIT
 * Text Domain: flattr-node
 *
 * Settings > flattr-node: the node's address (https://flattr.example.org),
 * your username on it, whether to append the button to posts, and an
 * optional API token to register each post as a thing when it is published.
 * The blog's home page links to your profile on the node with
 * rel="payment", so that the node can verify the blog as your site.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit; // Only inside WordPress.
}

const FLATTR_NODE_OPTION = 'flattr_node_settings';

/** The settings, with defaults. */
function flattr_node_settings() {
	$defaults = array(
		'node'     => '',
		'username' => '',
		'append'   => 1,
		'size'     => 'default',
		'script'   => 1,
		'token'    => '',
	);
	$saved = get_option( FLATTR_NODE_OPTION, array() );
	return wp_parse_args( is_array( $saved ) ? $saved : array(), $defaults );
}

/** The node's base URL without a trailing slash, or '' if not set or not http(s). */
function flattr_node_base() {
	$settings = flattr_node_settings();
	$node     = untrailingslashit( esc_url_raw( $settings['node'], array( 'http', 'https' ) ) );
	return $node;
}

/**
 * The node's origin (scheme://host[:port]): the popup script accepts messages
 * from this origin only, and a node may live under a path.
 */
function flattr_node_origin() {
	$parts = wp_parse_url( flattr_node_base() );
	if ( empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
		return '';
	}
	$scheme = strtolower( $parts['scheme'] );
	$port   = isset( $parts['port'] ) ? absint( $parts['port'] ) : 0;
	$port   = ( 0 === $port || ( 'http' === $scheme && 80 === $port ) || ( 'https' === $scheme && 443 === $port ) ) ? '' : ':' . $port;
	return $scheme . '://' . strtolower( $parts['host'] ) . $port; // As browsers write an origin: no default port.
}

/**
 * A title as plain text, as readers see it: tags stripped, and WordPress's
 * entities (get_the_title() gives "Kim &#038; Ann&#8217;s") decoded, so that
 * the node receives the characters, not their HTML.
 */
function flattr_node_plain_title( $title ) {
	return trim( html_entity_decode( wp_strip_all_tags( (string) $title ), ENT_QUOTES | ENT_HTML5, 'UTF-8' ) );
}

/** Your profile on the node, the page the home page's rel="payment" link names. */
function flattr_node_profile_url() {
	$node     = flattr_node_base();
	$settings = flattr_node_settings();
	if ( '' === $node || '' === $settings['username'] ) {
		return '';
	}
	return $node . '/users/' . rawurlencode( $settings['username'] );
}

/** The transient that keeps the node's answer about a post or a thing. */
function flattr_node_thing_key( $post_url, $thing_id = 0 ) {
	return 'flattr_node_' . md5( flattr_node_base() . '|' . absint( $thing_id ) . '|' . $post_url );
}

/**
 * What the node knows of a post (by its URL) or of a thing (by its id):
 * array( 'id', 'count', 'owner', 'url' ) (id 0, count 0 when it has no such thing
 * yet), or null when it does not answer. Kept for a minute, so a post's page asks the node at most once
 * a minute; a node that does not answer is left alone for five minutes.
 */
function flattr_node_thing( $post_url, $thing_id = 0 ) {
	$node = flattr_node_base();
	if ( '' === $node ) {
		return null;
	}
	$thing_id = absint( $thing_id );
	$key      = flattr_node_thing_key( $post_url, $thing_id );
	$cached   = get_transient( $key );
	if ( is_array( $cached ) && array_key_exists( 'thing', $cached ) ) {
		return $cached['thing'];
	}
	if ( $thing_id > 0 ) {
		$url = $node . '/api/v1/things/' . absint( $thing_id );
	} else {
		$url = $node . '/api/v1/things/lookup?' . http_build_query( array( 'url' => $post_url ), '', '&', PHP_QUERY_RFC3986 );
	}
	$response = wp_remote_get(
		$url,
		array(
			'timeout' => 3,
			'headers' => array( 'Accept' => 'application/json' ),
		)
	);
	$thing = null;
	$ttl   = MINUTE_IN_SECONDS;
	$code  = is_wp_error( $response ) ? 0 : (int) wp_remote_retrieve_response_code( $response );
	if ( 200 === $code ) {
		$data = json_decode( wp_remote_retrieve_body( $response ), true );
		if ( is_array( $data ) && isset( $data['id'] ) ) {
			$thing = array(
				'id'    => absint( $data['id'] ),
				'count' => isset( $data['flattrs_this_period'] ) ? absint( $data['flattrs_this_period'] ) : 0,
				'owner' => isset( $data['owner']['username'] ) ? (string) $data['owner']['username'] : '',
				'url'   => isset( $data['url'] ) ? (string) $data['url'] : '',
			);
		}
	} elseif ( 404 === $code && 0 === $thing_id ) {
		$thing = array(
			'id'    => 0,
			'count' => 0,
			'owner' => '',
			'url'   => '',
		);
	} elseif ( 404 !== $code ) {
		$ttl = 5 * MINUTE_IN_SECONDS; // Unreachable or failing: do not slow every page view down.
	}
	set_transient( $key, array( 'thing' => $thing ), $ttl );
	return $thing;
}

/** Flattr's auto-submit URL for a post: the thing is created on its first flattr. */
function flattr_node_autosubmit_url( $post_url, $title = '' ) {
	$node     = flattr_node_base();
	$settings = flattr_node_settings();
	if ( '' === $node || '' === $settings['username'] ) {
		return '';
	}
	$params = array(
		'user_id' => $settings['username'],
		'url'     => $post_url,
	);
	$title = flattr_node_plain_title( $title );
	if ( '' !== $title ) {
		$params['title'] = $title;
	}
	return $node . '/submit/auto?' . http_build_query( $params, '', '&', PHP_QUERY_RFC3986 );
}

/**
 * The button, as the node's own: a link to the confirmation page around the
 * count badge (no JavaScript needed), and this month's count as text for
 * screen readers and the popup script (hidden from sight: the badge shows it). A post
 * the node knows as your thing links to that thing; any other post gets
 * Flattr's auto-submit link, and its thing is made on its first flattr.
 */
function flattr_node_button( $post_url, $title = '', $size = 'default', $thing_id = 0 ) {
	$node   = flattr_node_base();
	$origin = flattr_node_origin();
	if ( '' === $node || '' === $origin ) {
		return '';
	}
	$size     = ( 'compact' === $size ) ? 'compact' : 'default';
	$plain    = flattr_node_plain_title( $title ); // Decoded once: the auto-submit link decodes $title itself.
	$thing_id = absint( $thing_id );
	$thing    = ( $thing_id > 0 || '' !== $post_url ) ? flattr_node_thing( $post_url, $thing_id ) : null;
	if ( 0 === $thing_id && null !== $thing ) {
		// Someone else's thing for this URL: the button stays yours (auto-submit).
		$thing_id = ( $thing['id'] > 0 && 0 === strcasecmp( $thing['owner'], flattr_node_settings()['username'] ) ) ? $thing['id'] : 0;
	}
	$count = null !== $thing ? (string) $thing['count'] : '';
	if ( $thing_id > 0 && null !== $thing && '' !== $thing['url'] ) {
		$post_url = $thing['url']; // [flattr id="12"]: the thing's own URL, as on the node's button.
	}
	if ( $thing_id > 0 ) {
		$href  = $node . '/things/' . $thing_id . '/flattr';
		$badge = $node . '/things/' . $thing_id . '/badge.svg';
		if ( 'compact' === $size ) {
			$badge .= '?size=compact';
		}
	} else {
		$href = flattr_node_autosubmit_url( $post_url, $title );
		if ( '' === $href ) {
			return '';
		}
		$badge = $node . '/badge.svg?' . http_build_query(
			array_filter(
				array(
					'url'  => $post_url,
					'size' => 'compact' === $size ? 'compact' : null,
				)
			),
			'',
			'&',
			PHP_QUERY_RFC3986
		);
	}
	list( $width, $height ) = ( 'compact' === $size ) ? array( 110, 20 ) : array( 56, 64 );
	/* translators: %s: post title */
	$alt = sprintf( __( 'Flattr this: %s', 'flattr-node' ), $plain );
	/* translators: %s: post title */
	$link_title = sprintf( __( 'Flattr %s', 'flattr-node' ), $plain );
	return sprintf(
		'<span class="flattr-node flattr-node-%1$s"><a class="flattr-node-button" href="%2$s"%3$s data-flattr-url="%4$s" data-flattr-node="%5$s" rel="payment" title="%6$s"><img src="%7$s" width="%8$d" height="%9$d" alt="%10$s"></a> <span class="flattr-node-count" data-flattr-count="" style="%12$s">%11$s</span></span>',
		esc_attr( $size ),
		esc_url( $href ),
		$thing_id > 0 ? ' data-flattr-thing="' . $thing_id . '"' : '',
		esc_url( $post_url ),
		esc_attr( $origin ),
		esc_attr( $link_title ),
		esc_url( $badge ),
		$width,
		$height,
		esc_attr( $alt ),
		esc_html( $count ),
		// The badge shows the count; this copy is for screen readers and the popup
		// script, hidden from sight as on the node's own button.
		'position:absolute;width:1px;height:1px;margin:-1px;padding:0;border:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap'
	);
}

/** [flattr], [flattr id="12"], [flattr url="https://..." title="..." size="compact"] */
function flattr_node_shortcode( $atts ) {
	$atts = shortcode_atts(
		array(
			'id'    => 0,
			'url'   => '',
			'title' => '',
			'size'  => flattr_node_settings()['size'],
		),
		$atts,
		'flattr'
	);
	$post     = get_post();
	// The editor stores "&" in a post as "&amp;": the attribute's URL is the decoded one.
	$url      = html_entity_decode( (string) $atts['url'], ENT_QUOTES | ENT_HTML5, 'UTF-8' );
	$post_url = '' !== $url ? esc_url_raw( $url, array( 'http', 'https' ) ) : ( $post ? get_permalink( $post ) : '' );
	$title    = '' !== $atts['title'] ? $atts['title'] : ( $post ? get_the_title( $post ) : '' );
	if ( '' === $post_url && ! absint( $atts['id'] ) ) {
		return '';
	}
	flattr_node_enqueue_script();
	return flattr_node_button( $post_url, $title, $atts['size'], absint( $atts['id'] ) );
}
add_shortcode( 'flattr', 'flattr_node_shortcode' );

/**
 * [flattr] alone on its line (or alone in a paragraph block): WordPress takes
 * the paragraph off a shortcode that stands alone (shortcode_unautop), which
 * leaves the button's <span> loose in the content, outside the theme's text
 * column. This runs after shortcode_unautop and before do_shortcode, and puts
 * such a line back in a paragraph.
 */
function flattr_node_wrap_alone( $content ) {
	if ( false === strpos( $content, '[flattr' ) ) {
		return $content;
	}
	return preg_replace( '/^[ \t]*(\[flattr(?:\s[^\[\]]*)?\])[ \t]*$/m', '<p class="flattr-node-wrap">$1</p>', $content );
}
add_filter( 'the_content', 'flattr_node_wrap_alone', 10 );

/** The optional popup script, from the node itself. */
function flattr_node_enqueue_script() {
	$settings = flattr_node_settings();
	$node     = flattr_node_base();
	if ( $settings['script'] && '' !== $node ) {
		wp_enqueue_script( 'flattr-node-button', $node . '/button.js', array(), null, true );
	}
}

/** Append the button to every post (if enabled). */
function flattr_node_append( $content ) {
	$settings = flattr_node_settings();
	if ( ! $settings['append'] || ! is_singular( 'post' ) || ! in_the_loop() || ! is_main_query() ) {
		return $content;
	}
	if ( has_shortcode( $content, 'flattr' ) ) {
		return $content;
	}
	$post   = get_post();
	$button = flattr_node_button( get_permalink( $post ), get_the_title( $post ), $settings['size'] );
	if ( '' === $button ) {
		return $content;
	}
	flattr_node_enqueue_script();
	return $content . '<p class="flattr-node-wrap">' . $button . '</p>';
}
add_filter( 'the_content', 'flattr_node_append' );

/**
 * <link rel="payment"> in the head: on the home page to your profile on the
 * node (the node verifies the blog as your site by it), on single posts to
 * the post's auto-submit URL, in Flattr's form.
 */
function flattr_node_head() {
	if ( is_front_page() || is_home() ) {
		$profile = flattr_node_profile_url();
		if ( '' !== $profile ) {
			printf( '<link rel="payment" type="text/html" href="%s" />' . "\n", esc_url( $profile ) );
		}
	}
	if ( ! is_singular( 'post' ) ) {
		return;
	}
	$post = get_queried_object();
	$href = flattr_node_autosubmit_url( get_permalink( $post ), get_the_title( $post ) );
	if ( '' !== $href ) {
		printf( '<link rel="payment" type="text/html" href="%s" />' . "\n", esc_url( $href ) );
	}
}
add_action( 'wp_head', 'flattr_node_head' );

/** rel="payment" in RSS 2.0 items (WordPress declares xmlns:atom on the channel). */
function flattr_node_rss_item() {
	$href = flattr_node_autosubmit_url( get_permalink(), get_the_title_rss() );
	if ( '' !== $href ) {
		printf( "\t\t" . '<atom:link rel="payment" type="text/html" href="%s" />' . "\n", esc_url( $href ) );
	}
}
add_action( 'rss2_item', 'flattr_node_rss_item' );

/** rel="payment" in Atom entries. */
function flattr_node_atom_entry() {
	$href = flattr_node_autosubmit_url( get_permalink(), get_the_title_rss() );
	if ( '' !== $href ) {
		printf( "\t\t" . '<link rel="payment" type="text/html" href="%s" />' . "\n", esc_url( $href ) );
	}
}
add_action( 'atom_entry', 'flattr_node_atom_entry' );

/**
 * The node as a trusted oEmbed provider: pasting a thing page URL on its own
 * line embeds the button. Providers added with wp_oembed_add_provider() are
 * trusted, so WordPress keeps their markup as the node sends it.
 */
function flattr_node_oembed_provider() {
	$node = flattr_node_base();
	if ( '' === $node ) {
		return;
	}
	$pattern = '#^' . preg_quote( $node, '#' ) . '/(things/\d+|submit/auto\?.*)$#i';
	wp_oembed_add_provider( $pattern, $node . '/oembed', true );
}
add_action( 'init', 'flattr_node_oembed_provider' );

/** Register a post as a thing when it is published (needs an API token). */
function flattr_node_register_on_publish( $new_status, $old_status, $post ) {
	$settings = flattr_node_settings();
	$node     = flattr_node_base();
	if ( 'publish' !== $new_status || 'publish' === $old_status || 'post' !== $post->post_type ) {
		return;
	}
	if ( '' === $node || '' === $settings['token'] ) {
		return;
	}
	$response = wp_remote_post(
		$node . '/api/v1/things',
		array(
			'timeout' => 10,
			'headers' => array(
				'Authorization' => 'Bearer ' . $settings['token'],
				'Content-Type'  => 'application/json',
			),
			'body'    => wp_json_encode(
				array(
					'url'   => get_permalink( $post ),
					'title' => flattr_node_plain_title( get_the_title( $post ) ),
				)
			),
		)
	);
	$post_url = get_permalink( $post );
	delete_transient( flattr_node_thing_key( $post_url ) ); // The button links to the new thing.
	if ( is_wp_error( $response ) ) {
		error_log( sprintf( 'flattr-node: cannot register %s on %s: %s', $post_url, $node, $response->get_error_message() ) );
		return;
	}
	$code = (int) wp_remote_retrieve_response_code( $response );
	if ( 201 === $code ) {
		return;
	}
	$body = json_decode( wp_remote_retrieve_body( $response ), true );
	$why  = ( is_array( $body ) && isset( $body['error_description'] ) ) ? (string) $body['error_description'] : '';
	if ( 422 === $code && false !== strpos( $why, 'already registered' ) ) {
		return; // Published again (an edit, a retry): the thing is there.
	}
	error_log( sprintf( 'flattr-node: %s did not register %s: %s (HTTP %d)', $node, $post_url, '' !== $why ? $why : 'no reason given', $code ) );
}
add_action( 'transition_post_status', 'flattr_node_register_on_publish', 10, 3 );

/**
 * Settings > flattr-node. The API token is never sent back to the browser:
 * its field stays empty, an empty field keeps the saved token, and a
 * checkbox removes it.
 */
function flattr_node_sanitize( $input ) {
	$input = is_array( $input ) ? $input : array();
	$token = sanitize_text_field( isset( $input['token'] ) ? $input['token'] : '' );
	if ( '' === $token && empty( $input['token_remove'] ) ) {
		$token = flattr_node_settings()['token'];
	}
	return array(
		'node'     => esc_url_raw( isset( $input['node'] ) ? $input['node'] : '', array( 'http', 'https' ) ),
		'username' => sanitize_user( isset( $input['username'] ) ? $input['username'] : '', true ),
		'append'   => empty( $input['append'] ) ? 0 : 1,
		'size'     => ( isset( $input['size'] ) && 'compact' === $input['size'] ) ? 'compact' : 'default',
		'script'   => empty( $input['script'] ) ? 0 : 1,
		'token'    => $token,
	);
}

function flattr_node_admin_init() {
	register_setting( 'flattr_node', FLATTR_NODE_OPTION, array( 'sanitize_callback' => 'flattr_node_sanitize' ) );
}
add_action( 'admin_init', 'flattr_node_admin_init' );

function flattr_node_admin_menu() {
	add_options_page( 'flattr-node', 'flattr-node', 'manage_options', 'flattr-node', 'flattr_node_settings_page' );
}
add_action( 'admin_menu', 'flattr_node_admin_menu' );

function flattr_node_settings_page() {
	if ( ! current_user_can( 'manage_options' ) ) {
		return;
	}
	$s = flattr_node_settings();
	?>
	<div class="wrap">
		<h1><?php esc_html_e( 'flattr-node', 'flattr-node' ); ?></h1>
		<form method="post" action="options.php">
			<?php settings_fields( 'flattr_node' ); ?>
			<table class="form-table" role="presentation">
				<tr><th scope="row"><label for="fn-node"><?php esc_html_e( 'Node address', 'flattr-node' ); ?></label></th>
					<td><input id="fn-node" class="regular-text" type="url" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[node]" value="<?php echo esc_attr( $s['node'] ); ?>" placeholder="https://flattr.example.org"></td></tr>
				<tr><th scope="row"><label for="fn-user"><?php esc_html_e( 'Your username on the node', 'flattr-node' ); ?></label></th>
					<td><input id="fn-user" type="text" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[username]" value="<?php echo esc_attr( $s['username'] ); ?>"></td></tr>
				<tr><th scope="row"><?php esc_html_e( 'Button', 'flattr-node' ); ?></th>
					<td><label><input type="checkbox" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[append]" value="1" <?php checked( $s['append'], 1 ); ?>> <?php esc_html_e( 'Append the button to every post', 'flattr-node' ); ?></label><br>
					<label><input type="checkbox" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[script]" value="1" <?php checked( $s['script'], 1 ); ?>> <?php esc_html_e( 'Open the confirmation as a popup and update the count', 'flattr-node' ); ?></label><br>
					<select name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[size]">
						<option value="default" <?php selected( $s['size'], 'default' ); ?>><?php esc_html_e( 'Default', 'flattr-node' ); ?></option>
						<option value="compact" <?php selected( $s['size'], 'compact' ); ?>><?php esc_html_e( 'Compact', 'flattr-node' ); ?></option>
					</select></td></tr>
				<tr><th scope="row"><label for="fn-token"><?php esc_html_e( 'API token (optional)', 'flattr-node' ); ?></label></th>
					<td><input id="fn-token" class="regular-text" type="password" autocomplete="new-password" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[token]" value="" placeholder="<?php echo '' !== $s['token'] ? esc_attr__( 'A token is saved: leave empty to keep it', 'flattr-node' ) : ''; ?>">
					<?php if ( '' !== $s['token'] ) : ?>
					<br><label><input type="checkbox" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[token_remove]" value="1"> <?php esc_html_e( 'Remove the saved token', 'flattr-node' ); ?></label>
					<?php endif; ?>
					<p class="description"><?php esc_html_e( 'With a token that may register things (flattr-node token create NAME --scope thing), each post is registered as a thing when it is published. The token is not shown again once saved.', 'flattr-node' ); ?></p></td></tr>
			</table>
			<?php submit_button(); ?>
		</form>
	</div>
	<?php
}
